//! A Pod's spec turned into what the runtime takes: the sandbox (hostname, DNS, volumes)
//! and each container's config (command, environment with `$(VAR)` expansion and
//! ConfigMap/Secret/field references, mounts, resources, security). Pure: the ConfigMaps
//! and Secrets come in as a map.

use base64::Engine;
use skiff_api::core::{ConfigMap, Secret};
use skiff_api::pod::{Container, Pod, SecurityContext};
use skiff_runtime::{
    ContainerConfig, HostPathKind, MountConfig, ProjectedFile, Resources, SandboxConfig, Security,
    Volume, VolumeSource,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// ConfigMaps and Secrets a pod may read, by name (its namespace).
#[derive(Default, Clone, Debug, PartialEq)]
pub struct Sources {
    pub config_maps: HashMap<String, ConfigMap>,
    pub secrets: HashMap<String, Secret>,
    /// The node's allocatable: the downward API's value of a limit a container does not
    /// set.
    pub allocatable: BTreeMap<String, skiff_api::quantity::Quantity>,
    /// ServiceAccount tokens the worker holds, by [`token_key`].
    pub tokens: BTreeMap<String, String>,
}

/// How a projected token source's token is found in [`Sources::tokens`].
pub fn token_key(audience: &str, expiration_seconds: i64) -> String {
    format!("{audience}|{expiration_seconds}")
}

/// Why a container's config cannot be made yet (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

impl Sources {
    /// Registry credentials from the pod's `imagePullSecrets` (the kubelet reads Secrets
    /// of type `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`), and what
    /// kept some from counting: Secrets not there, of another type or unreadable. The
    /// kubelet warns of those and pulls anyway.
    pub fn pull_credentials(
        &self,
        pod: &Pod,
    ) -> (Vec<skiff_images::docker_config::Entry>, Vec<String>) {
        let (mut entries, mut problems) = (Vec::new(), Vec::new());
        for r in &pod.spec.image_pull_secrets {
            let Some(name) = r.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let Some(secret) = self.secrets.get(name) else {
                problems.push(name.to_string());
                continue;
            };
            let (key, legacy) = match secret.type_.as_deref() {
                Some("kubernetes.io/dockerconfigjson") => (".dockerconfigjson", false),
                Some("kubernetes.io/dockercfg") => (".dockercfg", true),
                other => {
                    problems.push(format!(
                        "{name} (type {}, not a registry credential)",
                        other.unwrap_or("Opaque")
                    ));
                    continue;
                }
            };
            let parsed = secret
                .data
                .get(key)
                .and_then(|v| b64(v))
                .ok_or_else(|| format!("no {key}"))
                .and_then(|json| skiff_images::docker_config::parse(&json, legacy));
            match parsed {
                Ok(e) => entries.extend(e),
                Err(e) => problems.push(format!("{name} ({key}: {e})")),
            }
        }
        (entries, problems)
    }

    /// A ConfigMap's keys (data and binaryData) as bytes.
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.config_maps.get(name)?;
        let mut out: BTreeMap<String, Vec<u8>> = cm
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        for (k, v) in &cm.binary_data {
            if let Some(b) = b64(v) {
                out.insert(k.clone(), b);
            }
        }
        Some(out)
    }

    /// A Secret's keys as bytes.
    fn secret(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let s = self.secrets.get(name)?;
        let mut out: BTreeMap<String, Vec<u8>> = s
            .data
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), b64(v)?)))
            .collect();
        for (k, v) in &s.string_data {
            out.insert(k.clone(), v.clone().into_bytes());
        }
        Some(out)
    }
}

/// Kubernetes' `$(VAR)` expansion: references to variables defined so far are replaced,
/// `$$` escapes, unknown references stay as written.
pub fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'(' {
                if let Some(end) = s[i + 2..].find(')') {
                    let name = &s[i + 2..i + 2 + end];
                    if let Some(v) = vars.get(name) {
                        out.push_str(v);
                        i += 3 + end;
                        continue;
                    }
                }
            }
        }
        let ch = s[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn env_name_ok(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The container's environment, in order: envFrom, then env (later names win).
pub fn environment(
    pod: &Pod,
    c: &Container,
    src: &Sources,
    host_ip: &str,
    pod_ip: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut order: Vec<String> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let set = |order: &mut Vec<String>, vars: &mut HashMap<String, String>, k: String, v| {
        if vars.insert(k.clone(), v).is_none() {
            order.push(k);
        }
    };
    for from in &c.env_from {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, what, r) = if let Some(r) = &from.config_map_ref {
            (
                src.config_map(r.name.as_deref().unwrap_or("")),
                "configmap",
                r,
            )
        } else if let Some(r) = &from.secret_ref {
            (src.secret(r.name.as_deref().unwrap_or("")), "secret", r)
        } else {
            continue;
        };
        match data {
            Some(d) => {
                for (k, v) in d {
                    let name = format!("{prefix}{k}");
                    if env_name_ok(&name) {
                        set(
                            &mut order,
                            &mut vars,
                            name,
                            String::from_utf8_lossy(&v).into_owned(),
                        );
                    }
                }
            }
            None if r.optional == Some(true) => {}
            None => {
                return Err(ConfigError(format!(
                    "{what} {:?} not found",
                    r.name.as_deref().unwrap_or("")
                )))
            }
        }
    }
    for e in &c.env {
        let value = if let Some(v) = &e.value {
            expand(v, &vars)
        } else if let Some(from) = &e.value_from {
            let keyed = match (&from.config_map_key_ref, &from.secret_key_ref) {
                (Some(k), _) => Some((
                    k,
                    "ConfigMap",
                    src.config_map(k.name.as_deref().unwrap_or("")),
                )),
                (None, Some(k)) => Some((k, "Secret", src.secret(k.name.as_deref().unwrap_or("")))),
                (None, None) => None,
            };
            if let Some((k, what, data)) = keyed {
                let name = k.name.as_deref().unwrap_or("");
                match data.map(|d| d.get(&k.key).cloned()) {
                    Some(Some(v)) => String::from_utf8_lossy(&v).into_owned(),
                    _ if k.optional == Some(true) => continue,
                    Some(None) => {
                        return Err(ConfigError(format!(
                            "couldn't find key {} in {what} {}/{name}",
                            k.key,
                            pod.metadata.namespace()
                        )))
                    }
                    None => {
                        return Err(ConfigError(format!(
                            "{} {name:?} not found",
                            what.to_ascii_lowercase()
                        )))
                    }
                }
            } else if let Some(f) = &from.field_ref {
                super::downward::field_value(pod, &f.field_path, host_ip, pod_ip)
                    .map_err(ConfigError)?
            } else if let Some(r) = &from.resource_field_ref {
                super::downward::resource_value(pod, &c.name, r, &src.allocatable)
                    .map_err(ConfigError)?
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut order, &mut vars, e.name.clone(), value);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect())
}

/// The files of a ConfigMap or Secret volume (all keys, or `items`).
fn projected(
    data: &BTreeMap<String, Vec<u8>>,
    items: &[skiff_api::pod::KeyToPath],
) -> Result<Vec<ProjectedFile>, ConfigError> {
    if items.is_empty() {
        return Ok(data
            .iter()
            .map(|(k, v)| ProjectedFile {
                path: k.clone(),
                data: v.clone(),
                mode: None,
            })
            .collect());
    }
    items
        .iter()
        .map(|i| {
            let v = data
                .get(&i.key)
                .ok_or_else(|| ConfigError(format!("key {:?} not found", i.key)))?;
            Ok(ProjectedFile {
                path: i.path.clone(),
                data: v.clone(),
                mode: i.mode.map(|m| m as u32),
            })
        })
        .collect()
}

/// A ConfigMap/Secret/projected/downward API volume's name, files and default mode.
pub type ProjectedVolume = (String, Vec<ProjectedFile>, u32);

/// The files of a ConfigMap or Secret (`what`), all keys or `items`; none when it is
/// missing and `optional`.
fn object_files(
    what: &str,
    name: &str,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: &[skiff_api::pod::KeyToPath],
    optional: Option<bool>,
) -> Result<Vec<ProjectedFile>, ConfigError> {
    match data {
        Some(d) => projected(&d, items),
        None if optional == Some(true) => Ok(Vec::new()),
        None => Err(ConfigError(format!("{what} {name:?} not found"))),
    }
}

/// A projected volume's files, source by source.
fn projected_sources(
    pod: &Pod,
    p: &skiff_api::pod::ProjectedVolumeSource,
    src: &Sources,
) -> Result<Vec<ProjectedFile>, ConfigError> {
    let mut files = Vec::new();
    for s in &p.sources {
        let object = match (&s.config_map, &s.secret) {
            (Some(o), _) => Some(("configmap", o)),
            (None, Some(o)) => Some(("secret", o)),
            (None, None) => None,
        };
        if let Some((what, o)) = object {
            let name = o.name.as_deref().unwrap_or("");
            let data = match what {
                "secret" => src.secret(name),
                _ => src.config_map(name),
            };
            files.extend(object_files(what, name, data, &o.items, o.optional)?);
        } else if let Some(d) = &s.downward_api {
            files.extend(
                super::downward::files(pod, &d.items, &src.allocatable).map_err(ConfigError)?,
            );
        } else if let Some(t) = &s.service_account_token {
            let audience = t.audience.as_deref().unwrap_or("");
            let key = token_key(audience, t.expiration_seconds.unwrap_or(3600));
            let Some(token) = src.tokens.get(&key) else {
                return Err(ConfigError(format!(
                    "no ServiceAccount token yet for audience {audience:?} (the coordinator issues it)"
                )));
            };
            files.push(ProjectedFile {
                path: t.path.clone(),
                data: token.clone().into_bytes(),
                mode: None,
            });
        }
    }
    Ok(files)
}

/// The files of a pod's ConfigMap, Secret, projected and downward API volumes (for the
/// sandbox and for updates while it runs).
pub fn projected_volumes(pod: &Pod, src: &Sources) -> Result<Vec<ProjectedVolume>, ConfigError> {
    let mut out = Vec::new();
    for v in &pod.spec.volumes {
        if let Some(p) = &v.projected {
            let files = projected_sources(pod, p, src)?;
            out.push((
                v.name.clone(),
                files,
                p.default_mode.unwrap_or(0o644) as u32,
            ));
            continue;
        }
        if let Some(d) = &v.downward_api {
            let files =
                super::downward::files(pod, &d.items, &src.allocatable).map_err(ConfigError)?;
            out.push((
                v.name.clone(),
                files,
                d.default_mode.unwrap_or(0o644) as u32,
            ));
            continue;
        }
        let (what, name, data, items, optional, mode) = if let Some(cm) = &v.config_map {
            let name = cm.name.as_deref().unwrap_or("");
            (
                "configmap",
                name,
                src.config_map(name),
                &cm.items,
                cm.optional,
                cm.default_mode,
            )
        } else if let Some(s) = &v.secret {
            let name = s.secret_name.as_deref().unwrap_or("");
            (
                "secret",
                name,
                src.secret(name),
                &s.items,
                s.optional,
                s.default_mode,
            )
        } else {
            continue;
        };
        let files = object_files(what, name, data, items, optional)?;
        out.push((v.name.clone(), files, mode.unwrap_or(0o644) as u32));
    }
    Ok(out)
}

/// The pod's `resolv.conf`, as the kubelet makes it: by `dnsPolicy` the cluster's DNS
/// (the node's server at `gateway`, the search domains of the namespace in the cluster's
/// `domain`, `ndots:5`; for a
/// host-network pod only with `ClusterFirstWithHostNet`), the node's own (`Default`, or no
/// pod network), or nothing (`None`); then `dnsConfig`'s nameservers and searches added
/// and its options merged by name (at most 3 nameservers, 32 searches).
pub fn dns(
    pod: &Pod,
    gateway: Option<std::net::Ipv4Addr>,
    domain: &str,
    host: skiff_runtime::DnsConfig,
) -> skiff_runtime::DnsConfig {
    let host_net = pod.spec.host_network == Some(true);
    let cluster = match pod.spec.dns_policy.as_deref().unwrap_or("ClusterFirst") {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_net,
        _ => false,
    };
    let mut out = match (pod.spec.dns_policy.as_deref(), gateway.filter(|_| cluster)) {
        (Some("None"), _) => skiff_runtime::DnsConfig::default(),
        (_, Some(gw)) => {
            let ns = pod.metadata.namespace();
            let d = domain;
            let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.to_string()];
            for s in host.searches {
                if !searches.contains(&s) {
                    searches.push(s);
                }
            }
            skiff_runtime::DnsConfig {
                nameservers: vec![std::net::IpAddr::V4(gw)],
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        _ => host,
    };
    if let Some(c) = &pod.spec.dns_config {
        for ns in c.nameservers.iter().filter_map(|n| n.parse().ok()) {
            if !out.nameservers.contains(&ns) {
                out.nameservers.push(ns);
            }
        }
        for s in &c.searches {
            if !out.searches.contains(s) {
                out.searches.push(s.clone());
            }
        }
        for o in &c.options {
            let Some(name) = o.name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            out.options.retain(|x| x.split(':').next() != Some(name));
            out.options.push(match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            });
        }
    }
    out.nameservers.truncate(3);
    out.searches.truncate(32);
    out
}

/// The pod's sandbox; `projected` is [`projected_volumes`] of the pod.
pub fn sandbox(
    pod: &Pod,
    id: &str,
    projected: &[ProjectedVolume],
    dns: skiff_runtime::DnsConfig,
) -> Result<SandboxConfig, ConfigError> {
    let mut volumes = Vec::new();
    let mut files: HashMap<&str, (&Vec<ProjectedFile>, u32)> = projected
        .iter()
        .map(|(n, f, m)| (n.as_str(), (f, *m)))
        .collect();
    for v in &pod.spec.volumes {
        let source = if let Some(e) = &v.empty_dir {
            VolumeSource::EmptyDir {
                memory: e.medium.as_deref() == Some("Memory"),
                size_limit: e.size_limit.as_ref().map(|q| q.value().max(0) as u64),
            }
        } else if let Some(h) = &v.host_path {
            let kind = match h.type_.as_deref().unwrap_or("") {
                "DirectoryOrCreate" => HostPathKind::DirectoryOrCreate,
                "Directory" => HostPathKind::Directory,
                "FileOrCreate" => HostPathKind::FileOrCreate,
                "File" => HostPathKind::File,
                "Socket" => HostPathKind::Socket,
                _ => HostPathKind::Unchecked,
            };
            VolumeSource::HostPath {
                path: PathBuf::from(&h.path),
                kind,
            }
        } else if let Some((f, mode)) = files.remove(v.name.as_str()) {
            VolumeSource::Files {
                files: f.clone(),
                default_mode: mode,
                // Secrets, tokens and the pod's own fields stay in memory, as the
                // kubelet keeps them.
                tmpfs: v.secret.is_some() || v.projected.is_some() || v.downward_api.is_some(),
            }
        } else if let Some(c) = &v.persistent_volume_claim {
            // The scheduler wrote the bound volume's directory on the pod.
            let key = format!("{}{}", skiff_api::storage::POD_VOLUME_PATH_PREFIX, v.name);
            let Some(path) = pod.metadata.annotations.get(&key) else {
                return Err(ConfigError(format!(
                    "volume {:?}: claim {:?} was not bound to a volume when the pod was placed (a pod that names its node skips the scheduler, which binds claims)",
                    v.name, c.claim_name
                )));
            };
            VolumeSource::HostPath {
                path: PathBuf::from(path),
                kind: HostPathKind::VolumeDirectory,
            }
        } else {
            return Err(ConfigError(format!("volume {:?} has no source", v.name)));
        };
        volumes.push(Volume {
            name: v.name.clone(),
            source,
        });
    }
    let hostname = pod
        .spec
        .hostname
        .clone()
        .unwrap_or_else(|| pod.metadata.name().to_string());
    Ok(SandboxConfig {
        id: id.to_string(),
        hostname: hostname.chars().take(63).collect(),
        host_network: pod.spec.host_network == Some(true),
        dns,
        host_aliases: pod
            .spec
            .host_aliases
            .iter()
            .filter_map(|a| Some((a.ip.parse().ok()?, a.hostnames.clone())))
            .collect(),
        volumes,
        ..Default::default()
    })
}

fn security(pod: &Pod, c: Option<&SecurityContext>) -> Security {
    let psc = pod.spec.security_context.as_ref();
    let uid = c
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|p| p.run_as_user));
    let gid = c
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|p| p.run_as_group));
    let non_root = c
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|p| p.run_as_non_root));
    let mut groups: Vec<u32> = psc
        .map(|p| p.supplemental_groups.iter().map(|g| *g as u32).collect())
        .unwrap_or_default();
    if let Some(fs) = psc.and_then(|p| p.fs_group) {
        groups.push(fs as u32);
    }
    Security {
        run_as_user: uid.map(|u| u as u32),
        run_as_group: gid.map(|g| g as u32),
        run_as_non_root: non_root == Some(true),
        privileged: c.and_then(|s| s.privileged) == Some(true),
        add_capabilities: c
            .and_then(|s| s.capabilities.as_ref())
            .map(|k| k.add.clone())
            .unwrap_or_default(),
        drop_capabilities: c
            .and_then(|s| s.capabilities.as_ref())
            .map(|k| k.drop.clone())
            .unwrap_or_default(),
        read_only_root_filesystem: c.and_then(|s| s.read_only_root_filesystem) == Some(true),
        allow_privilege_escalation: c.and_then(|s| s.allow_privilege_escalation),
        supplemental_groups: groups,
    }
}

/// Where a container attempt's log goes: `<logs>/<ns>_<pod>_<uid>/<container>/<n>.log`, the
/// kubelet's layout.
pub fn log_path(logs: &Path, pod: &Pod, container: &str, attempt: u32) -> PathBuf {
    logs.join(format!(
        "{}_{}_{}",
        pod.metadata.namespace(),
        pod.metadata.name(),
        pod.metadata.uid.as_deref().unwrap_or("")
    ))
    .join(container)
    .join(format!("{attempt}.log"))
}

/// The newest attempt of a container that left a log (`<attempt>.log`): attempts are
/// numbered on from it, so the restart count never goes back and no log is overwritten,
/// even when the runtime's record of the attempt was lost (a garbled file set aside).
pub fn last_logged_attempt(logs: &Path, pod: &Pod, container: &str) -> Option<u32> {
    let dir = log_path(logs, pod, container, 0);
    std::fs::read_dir(dir.parent()?)
        .ok()?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse::<u32>()
                .ok()
        })
        .max()
}

/// One container's runtime config.
pub fn container(
    pod: &Pod,
    c: &Container,
    src: &Sources,
    host_ip: &str,
    pod_ip: &str,
    log_path: PathBuf,
    labels: BTreeMap<String, String>,
) -> Result<ContainerConfig, ConfigError> {
    let env = environment(pod, c, src, host_ip, pod_ip)?;
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let expand_all = |v: &Vec<String>| -> Option<Vec<String>> {
        (!v.is_empty()).then(|| v.iter().map(|s| expand(s, &vars)).collect())
    };
    let q = |m: Option<&BTreeMap<String, skiff_api::quantity::Quantity>>, k: &str| {
        m.and_then(|m| m.get(k)).cloned()
    };
    let res = c.resources.as_ref();
    let limits = res.map(|r| &r.limits);
    let requests = res.map(|r| &r.requests);
    // As Kubernetes: a request defaults to the limit.
    let cpu_request = q(requests, "cpu").or_else(|| q(limits, "cpu"));
    Ok(ContainerConfig {
        name: c.name.clone(),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        env,
        working_dir: c.working_dir.clone(),
        mounts: c
            .volume_mounts
            .iter()
            .map(|m| MountConfig {
                volume: m.name.clone(),
                container_path: m.mount_path.clone(),
                // A claim volume marked readOnly is read-only in every mount.
                read_only: m.read_only == Some(true)
                    || pod.spec.volumes.iter().any(|v| {
                        v.name == m.name
                            && v.persistent_volume_claim
                                .as_ref()
                                .is_some_and(|c| c.read_only == Some(true))
                    }),
                sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
            })
            .collect(),
        resources: Resources {
            cpu_request_millis: cpu_request.map(|q| q.millis().max(0) as u64),
            cpu_limit_millis: q(limits, "cpu").map(|q| q.millis().max(0) as u64),
            memory_limit: q(limits, "memory").map(|q| q.value().max(0) as u64),
            pids_limit: None,
        },
        security: security(pod, c.security_context.as_ref()),
        log_path,
        log_max_size: Some(10 << 20),
        log_max_files: Some(5),
        labels,
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin == Some(true) && c.stdin_once == Some(true),
        tty: c.tty == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let vars: HashMap<String, String> =
            [("A".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
        assert_eq!(expand("é$(A)", &vars), "éx");
    }

    fn pod(yaml: &str) -> Pod {
        let m = skiff_api::manifest::parse_manifests(yaml)
            .unwrap()
            .remove(0);
        match m.object {
            skiff_api::Object::Pod(p) => p,
            _ => panic!("not a pod"),
        }
    }

    #[test]
    fn dns_follows_the_policy_and_merges_the_config() {
        let host = skiff_runtime::DnsConfig {
            nameservers: vec!["192.0.2.53".parse().unwrap()],
            searches: vec!["lan".into()],
            options: vec!["ndots:1".into()],
        };
        let gw = Some(std::net::Ipv4Addr::new(10, 42, 0, 1));
        // The docs' dns-example pod: None with its own config.
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: dns-example, namespace: default}\nspec:\n  containers: [{name: test, image: nginx}]\n  dnsPolicy: \"None\"\n  dnsConfig:\n    nameservers: [192.0.2.1]\n    searches: [ns1.svc.cluster-domain.example, my.dns.search.suffix]\n    options:\n    - {name: ndots, value: \"2\"}\n    - {name: edns0}\n");
        let d = dns(&p, gw, "cluster.local", host.clone());
        assert_eq!(
            d.nameservers,
            ["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            d.searches,
            ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"]
        );
        assert_eq!(d.options, ["ndots:2", "edns0"]);
        // ClusterFirst with a config: the cluster's, then the additions; ndots replaced.
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: apps}\nspec:\n  containers: [{name: c, image: x}]\n  dnsConfig:\n    searches: [extra.example]\n    options: [{name: ndots, value: \"3\"}]\n");
        let d = dns(&p, gw, "cluster.local", host.clone());
        assert_eq!(
            d.nameservers,
            ["10.42.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(d.searches[0], "apps.svc.cluster.local");
        assert_eq!(d.searches.last().unwrap(), "extra.example");
        assert_eq!(d.options, ["ndots:3"]);
        // Default, and a host-network pod without ClusterFirstWithHostNet: the node's.
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  dnsPolicy: Default\n  containers: [{name: c, image: x}]\n");
        assert_eq!(dns(&p, gw, "cluster.local", host.clone()), host);
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers: [{name: c, image: x}]\n");
        assert_eq!(dns(&p, gw, "cluster.local", host.clone()), host);
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  dnsPolicy: ClusterFirstWithHostNet\n  containers: [{name: c, image: x}]\n");
        assert_eq!(dns(&p, gw, "cluster.local", host).options, ["ndots:5"]);
    }

    #[test]
    fn pull_secrets_give_registry_credentials_and_name_what_they_could_not() {
        let p = pod("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  imagePullSecrets: [{name: reg}, {name: old}, {name: plain}, {name: gone}, {name: bad}]\n  containers: [{name: c, image: x}]\n");
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let secret = |type_: &str, key: &str, json: &str| Secret {
            type_: Some(type_.into()),
            data: [(key.to_string(), enc(json))].into(),
            ..Default::default()
        };
        let mut src = Sources::default();
        for (name, s) in [
            (
                "reg",
                secret(
                    "kubernetes.io/dockerconfigjson",
                    ".dockerconfigjson",
                    r#"{"auths": {"reg.example:5000": {"username": "u", "password": "p"}}}"#,
                ),
            ),
            (
                "old",
                secret(
                    "kubernetes.io/dockercfg",
                    ".dockercfg",
                    r#"{"old.example": {"username": "o", "password": "p"}}"#,
                ),
            ),
            ("plain", secret("Opaque", ".dockerconfigjson", "{}")),
            (
                "bad",
                secret(
                    "kubernetes.io/dockerconfigjson",
                    ".dockerconfigjson",
                    "{oops",
                ),
            ),
        ] {
            src.secrets.insert(name.into(), s);
        }
        let (entries, problems) = src.pull_credentials(&p);
        let find = |host: &str| {
            skiff_images::docker_config::find(&entries, host, "team/app")
                .map(|c| c.username.clone())
        };
        assert_eq!(find("reg.example:5000").as_deref(), Some("u"));
        assert_eq!(find("old.example").as_deref(), Some("o"));
        assert_eq!(find("elsewhere.example"), None);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("plain (type Opaque"),
            "{problems:?}"
        );
        assert_eq!(problems[1], "gone");
        assert!(
            problems[2].starts_with("bad (.dockerconfigjson: not JSON"),
            "{problems:?}"
        );
    }

    #[test]
    fn environment_resolves_references_in_order() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ns1, labels: {app: web}}
spec:
  containers:
  - name: c
    image: busybox
    envFrom:
    - configMapRef: {name: cm}
      prefix: CM_
    env:
    - {name: A, value: "1"}
    - {name: B, value: "$(A)-$(CM_k)"}
    - name: S
      valueFrom: {secretKeyRef: {name: s, key: pw}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: OPT
      valueFrom: {configMapKeyRef: {name: missing, key: k, optional: true}}
"#);
        let mut src = Sources::default();
        let mut cm = ConfigMap::default();
        cm.data.insert("k".into(), "v".into());
        src.config_maps.insert("cm".into(), cm);
        let mut s = Secret::default();
        s.data.insert("pw".into(), "aHVudGVyMg==".into());
        src.secrets.insert("s".into(), s);
        let env = environment(&p, &p.spec.containers[0], &src, "192.0.2.1", "10.42.0.5").unwrap();
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("CM_k", "v"),
                ("A", "1"),
                ("B", "1-v"),
                ("S", "hunter2"),
                ("APP", "web"),
                ("IP", "10.42.0.5")
            ]
        );
        src.secrets.clear();
        let e = environment(&p, &p.spec.containers[0], &src, "", "").unwrap_err();
        assert_eq!(e.0, "secret \"s\" not found");
    }
}
