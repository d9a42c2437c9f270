//! Pod volumes: one source each and each source's fields, as Kubernetes validates them
//! (ConfigMap, Secret, projected and downward API files: paths, modes, fields, resources).

use super::*;
use crate::pod::Volume;
use std::collections::BTreeSet;

/// `volumes`: names unique DNS labels, exactly one source each, and each source's own
/// fields. Returns the names, for the containers' mounts.
pub(super) fn validate_volumes(
    v: &mut Problems,
    base: &str,
    volumes: &[Volume],
) -> BTreeSet<String> {
    let mut volume_names = BTreeSet::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = format!("{base}.volumes[{i}]");
        if vol.name.is_empty() {
            v.required(&format!("{p}.name"));
        } else if let Some(why) = dns1123_label_problem(&vol.name) {
            v.invalid(&format!("{p}.name"), q(&vol.name), &why);
        } else if !volume_names.insert(vol.name.clone()) {
            v.push(
                &format!("{p}.name"),
                format!("Duplicate value: {:?}", vol.name),
            );
        }
        let sources = how_many_set(&[
            vol.empty_dir.is_some(),
            vol.host_path.is_some(),
            vol.config_map.is_some(),
            vol.secret.is_some(),
            vol.persistent_volume_claim.is_some(),
            vol.projected.is_some(),
            vol.downward_api.is_some(),
        ]);
        match sources {
            0 => v.required(&format!("{p}: must specify a volume type (skiff supports emptyDir, hostPath, configMap, secret, persistentVolumeClaim, projected, downwardAPI)")),
            1 => {}
            _ => v.forbidden(&p, "may not specify more than 1 volume type"),
        }
        if let Some(e) = &vol.empty_dir {
            v.one_of(&format!("{p}.emptyDir.medium"), &e.medium, &["", "Memory"]);
            if e.size_limit.as_ref().is_some_and(|q| q.is_negative()) {
                v.invalid(
                    &format!("{p}.emptyDir.sizeLimit"),
                    e.size_limit.as_ref().expect("checked"),
                    "must be greater than or equal to 0",
                );
            }
        }
        if let Some(h) = &vol.host_path {
            if h.path.is_empty() {
                v.required(&format!("{p}.hostPath.path"));
            }
            v.one_of(
                &format!("{p}.hostPath.type"),
                &h.type_,
                &[
                    "",
                    "DirectoryOrCreate",
                    "Directory",
                    "FileOrCreate",
                    "File",
                    "Socket",
                    "CharDevice",
                    "BlockDevice",
                ],
            );
        }
        if let Some(c) = &vol.config_map {
            if c.name.as_deref().unwrap_or("").is_empty() {
                v.required(&format!("{p}.configMap.name"));
            }
        }
        if let Some(s) = &vol.secret {
            if s.secret_name.as_deref().unwrap_or("").is_empty() {
                v.required(&format!("{p}.secret.secretName"));
            }
        }
        if let Some(c) = &vol.persistent_volume_claim {
            if c.claim_name.is_empty() {
                v.required(&format!("{p}.persistentVolumeClaim.claimName"));
            }
        }
        for (what, mode) in [
            (
                "configMap",
                vol.config_map.as_ref().and_then(|c| c.default_mode),
            ),
            ("secret", vol.secret.as_ref().and_then(|c| c.default_mode)),
            (
                "projected",
                vol.projected.as_ref().and_then(|c| c.default_mode),
            ),
            (
                "downwardAPI",
                vol.downward_api.as_ref().and_then(|c| c.default_mode),
            ),
        ] {
            validate_mode(v, &format!("{p}.{what}.defaultMode"), mode);
        }
        if let Some(d) = &vol.downward_api {
            let mut paths = BTreeSet::new();
            for (j, f) in d.items.iter().enumerate() {
                validate_downward_file(v, &format!("{p}.downwardAPI.items[{j}]"), f, &mut paths);
            }
        }
        if let Some(pr) = &vol.projected {
            validate_projected(v, &format!("{p}.projected"), pr);
        }
    }
    volume_names
}

/// A file mode: Kubernetes' 0 to 0777.
fn validate_mode(v: &mut Problems, path: &str, mode: Option<i32>) {
    if let Some(m) = mode.filter(|m| !(0..=0o777).contains(m)) {
        v.invalid(
            path,
            m,
            "must be a number between 0 and 0777 (octal), both inclusive",
        );
    }
}

/// A path inside a volume: relative, without `..`, and not seen before in the volume.
fn validate_volume_path(v: &mut Problems, path: &str, value: &str, seen: &mut BTreeSet<String>) {
    if value.is_empty() {
        v.required(path);
    } else if value.starts_with('/') {
        v.invalid(path, q(value), "must be a relative path");
    } else if value.split('/').any(|part| part == "..") {
        v.invalid(path, q(value), "must not contain '..'");
    } else if !seen.insert(value.to_string()) {
        v.invalid(path, q(value), "conflicting duplicate paths");
    }
}

/// The pod fields a downward API volume may project (env may also name spec.* and status.*).
pub(crate) const DOWNWARD_VOLUME_FIELDS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// The container resources a `resourceFieldRef` may name.
const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn indexed_field(path: &str) -> bool {
    ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|pre| path.starts_with(pre) && path.ends_with("']") && path.len() > pre.len() + 2)
}

/// A `resourceFieldRef`: a known resource, and a divisor that fits it. `volume`: the
/// container must be named.
pub(super) fn validate_resource_ref(
    v: &mut Problems,
    p: &str,
    r: &crate::pod::ResourceFieldSelector,
    volume: bool,
) {
    if volume && r.container_name.as_deref().unwrap_or("").is_empty() {
        v.required(&format!("{p}.containerName"));
    }
    if r.resource.is_empty() {
        v.required(&format!("{p}.resource"));
        return;
    }
    if !RESOURCE_FIELDS.contains(&r.resource.as_str()) {
        v.unsupported(&format!("{p}.resource"), &r.resource, RESOURCE_FIELDS);
        return;
    }
    let Some(d) = &r.divisor else { return };
    let text = d.to_string();
    if r.resource.ends_with(".cpu") {
        if !matches!(text.as_str(), "1m" | "1") {
            v.invalid(
                &format!("{p}.divisor"),
                q(&text),
                "only divisor's values 1m and 1 are supported with the cpu resource",
            );
        }
    } else {
        const MEM: &[&str] = &[
            "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
        ];
        if !MEM.contains(&text.as_str()) {
            v.invalid(
                &format!("{p}.divisor"),
                q(&text),
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource and the memory resource",
            );
        }
    }
}

/// One file of a downward API volume or projection.
fn validate_downward_file(
    v: &mut Problems,
    p: &str,
    f: &crate::pod::DownwardApiVolumeFile,
    paths: &mut BTreeSet<String>,
) {
    validate_volume_path(v, &format!("{p}.path"), &f.path, paths);
    validate_mode(v, &format!("{p}.mode"), f.mode);
    match (&f.field_ref, &f.resource_field_ref) {
        (Some(_), Some(_)) => v.invalid(
            p,
            "resource",
            "fieldRef and resourceFieldRef can not be specified simultaneously",
        ),
        (None, None) => v.required(&format!("{p}: one of fieldRef and resourceFieldRef")),
        (Some(fr), None) => {
            let fp = fr.field_path.as_str();
            if !DOWNWARD_VOLUME_FIELDS.contains(&fp) && !indexed_field(fp) {
                v.unsupported(
                    &format!("{p}.fieldRef.fieldPath"),
                    fp,
                    DOWNWARD_VOLUME_FIELDS,
                );
            }
        }
        (None, Some(r)) => validate_resource_ref(v, &format!("{p}.resourceFieldRef"), r, true),
    }
}

/// A projected volume: one source per entry, each source's own fields, no path twice.
fn validate_projected(v: &mut Problems, p: &str, pr: &crate::pod::ProjectedVolumeSource) {
    let mut paths = BTreeSet::new();
    for (i, src) in pr.sources.iter().enumerate() {
        let sp = format!("{p}.sources[{i}]");
        let n = how_many_set(&[
            src.secret.is_some(),
            src.config_map.is_some(),
            src.downward_api.is_some(),
            src.service_account_token.is_some(),
            src.cluster_trust_bundle.is_some(),
        ]);
        if n > 1 {
            v.forbidden(&sp, "may not specify more than 1 volume type per source");
        }
        for (what, o) in [("secret", &src.secret), ("configMap", &src.config_map)] {
            let Some(o) = o else { continue };
            if o.name.as_deref().unwrap_or("").is_empty() {
                v.required(&format!("{sp}.{what}.name"));
            }
            for (j, item) in o.items.iter().enumerate() {
                let ip = format!("{sp}.{what}.items[{j}]");
                if item.key.is_empty() {
                    v.required(&format!("{ip}.key"));
                }
                validate_volume_path(v, &format!("{ip}.path"), &item.path, &mut paths);
                validate_mode(v, &format!("{ip}.mode"), item.mode);
            }
        }
        if let Some(d) = &src.downward_api {
            for (j, f) in d.items.iter().enumerate() {
                validate_downward_file(v, &format!("{sp}.downwardAPI.items[{j}]"), f, &mut paths);
            }
        }
        if let Some(t) = &src.service_account_token {
            let tp = format!("{sp}.serviceAccountToken");
            validate_volume_path(v, &format!("{tp}.path"), &t.path, &mut paths);
            match t.expiration_seconds {
                Some(e) if e < 600 => v.invalid(
                    &format!("{tp}.expirationSeconds"),
                    e,
                    "may not specify a duration less than 10 minutes",
                ),
                Some(e) if e > 1 << 32 => v.invalid(
                    &format!("{tp}.expirationSeconds"),
                    e,
                    "may not specify a duration larger than 2^32 seconds",
                ),
                _ => {}
            }
        }
        if let Some(b) = &src.cluster_trust_bundle {
            let bp = format!("{sp}.clusterTrustBundle");
            validate_volume_path(v, &format!("{bp}.path"), &b.path, &mut paths);
            if b.name.is_some() == b.signer_name.is_some() {
                v.required(&format!("{bp}: either name or signerName must be set"));
            }
            // Kubernetes 1.33 serves ClusterTrustBundles only behind a feature gate that is
            // off by default; skiff has no such kind.
            v.forbidden(&bp, "skiff serves no ClusterTrustBundles (certificates.k8s.io/v1beta1, behind a feature gate in Kubernetes): use a configMap source with the bundle");
        }
    }
}
