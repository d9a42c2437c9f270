//! Manifests: YAML (multi-document) or JSON in, validated objects or precise errors out.
//!
//! A field the model does not hold is either a Kubernetes field skiff does not implement
//! (a warning naming it: never dropped silently) or unknown (an error, usually a typo).

use crate::object::{Kind, Object};
use crate::validate::validate_with_warnings;
use crate::yaml::{parse_documents, Document};
use serde_json::Value;
use std::collections::HashMap;

/// One object read from a manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The object.
    pub object: Object,
    /// Known Kubernetes fields that skiff does not implement, with their lines.
    pub warnings: Vec<String>,
    /// How errors and warnings name this document: `deployment "web"`.
    pub label: String,
}

/// Everything wrong with a manifest: one line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct ManifestError {
    /// `deployment "web": spec.replicas: Invalid value: -1: ... (line 7)`.
    pub errors: Vec<String>,
}

/// Parses every document of a YAML or JSON text. Nothing is returned unless every
/// document is valid, so a caller never writes half of an input.
pub fn parse_manifests(text: &str) -> Result<Vec<Manifest>, ManifestError> {
    let docs = read_documents(text)?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut n = 0;
    for doc in docs {
        // A `List` (as `kubectl get -o json` prints) holds its objects in `items`.
        if doc.value.get("kind").and_then(Value::as_str) == Some("List") {
            let items = doc
                .value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                n += 1;
                let sub = sub_document(&doc, &format!("items[{i}]"), item);
                match parse_one(&sub, n) {
                    Ok(m) => out.push(m),
                    Err(mut e) => errors.append(&mut e),
                }
            }
            continue;
        }
        n += 1;
        match parse_one(&doc, n) {
            Ok(m) => out.push(m),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ManifestError { errors })
    }
}

fn sub_document(doc: &Document, prefix: &str, value: Value) -> Document {
    let pre = format!("{prefix}.");
    let lines: HashMap<String, usize> = doc
        .lines
        .iter()
        .filter_map(|(k, l)| k.strip_prefix(&pre).map(|s| (s.to_string(), *l)))
        .collect();
    Document {
        line: doc.lines.get(prefix).copied().unwrap_or(doc.line),
        value,
        lines,
    }
}

fn read_documents(text: &str) -> Result<Vec<Document>, ManifestError> {
    match parse_documents(text) {
        Ok(d) => Ok(d),
        Err(yaml_err) => {
            // JSON that the YAML reader refuses (tabs, say) still parses as JSON, with
            // lines only at document level.
            let trimmed = text.trim_start();
            if trimmed.starts_with('{') || trimmed.starts_with('[') {
                match serde_json::from_str::<Value>(text) {
                    Ok(v) => {
                        let values = match v {
                            Value::Array(a) => a,
                            v => vec![v],
                        };
                        return Ok(values
                            .into_iter()
                            .map(|value| Document {
                                value,
                                line: 1,
                                lines: HashMap::new(),
                            })
                            .collect());
                    }
                    Err(e) => {
                        return Err(ManifestError {
                            errors: vec![format!("invalid JSON: {e}")],
                        })
                    }
                }
            }
            Err(ManifestError {
                errors: vec![format!(
                    "invalid YAML: {} (line {})",
                    yaml_err.message, yaml_err.line
                )],
            })
        }
    }
}

fn parse_one(doc: &Document, n: usize) -> Result<Manifest, Vec<String>> {
    let v = &doc.value;
    let at = |path: &str| doc.line_of(path);
    let Some(obj) = v.as_object() else {
        return Err(vec![format!(
            "document {n}: expected an object with apiVersion and kind (line {})",
            doc.line
        )]);
    };
    let head = Head {
        kind: obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        api_version: obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        name: obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let (kind, label) = check_head(&head, n, &at)?;
    let mut ignored = Vec::new();
    let converted;
    let v = if head.api_version == AUTOSCALING_V1 {
        converted = crate::autoscaling::from_v1(v.clone());
        &converted
    } else {
        v
    };
    let decoded = Object::decode(kind, v, &mut |p| ignored.push(p));
    finish(kind, label, decoded, ignored, &at, FieldValidation::Strict)
}

/// `autoscaling/v1`, whose HorizontalPodAutoscalers are read as `autoscaling/v2`.
const AUTOSCALING_V1: &str = "autoscaling/v1";

/// What identifies a document before it is decoded.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    api_version: String,
    #[serde(default, skip)]
    name: Option<String>,
}

#[derive(serde::Deserialize)]
struct HeadWithName {
    #[serde(flatten)]
    head: Head,
    #[serde(default)]
    metadata: Option<NameOnly>,
}

#[derive(serde::Deserialize)]
struct NameOnly {
    #[serde(default)]
    name: Option<String>,
}

fn check_head(
    head: &Head,
    n: usize,
    at: &dyn Fn(&str) -> usize,
) -> Result<(Kind, String), Vec<String>> {
    let kind_text = head.kind.as_str();
    let label = match &head.name {
        Some(nm) => format!("{} {nm:?}", kind_text.to_ascii_lowercase()),
        None => format!(
            "{} (document {n})",
            if kind_text.is_empty() {
                "object"
            } else {
                kind_text
            }
            .to_ascii_lowercase()
        ),
    };
    if kind_text.is_empty() {
        return Err(vec![format!(
            "{label}: kind: Required value (line {})",
            at("kind")
        )]);
    }
    let Some(kind) = Kind::ALL.iter().copied().find(|k| k.name() == kind_text) else {
        let supported: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        return Err(vec![format!(
            "{label}: kind: Unsupported value: {kind_text:?}: skiff serves {} (line {})",
            supported.join(", "),
            at("kind")
        )]);
    };
    let api_version = head.api_version.as_str();
    // The one older version read (and converted), as Kubernetes still serves it.
    let older = kind == Kind::HorizontalPodAutoscaler && api_version == AUTOSCALING_V1;
    if api_version != kind.info().api_version && !older {
        let msg = if api_version.is_empty() {
            "Required value".to_string()
        } else {
            format!(
                "Unsupported value: {api_version:?}: {} is served as {:?}",
                kind.name(),
                kind.info().api_version
            )
        };
        return Err(vec![format!(
            "{label}: apiVersion: {msg} (line {})",
            at("apiVersion")
        )]);
    }
    Ok((kind, label))
}

fn finish(
    kind: Kind,
    label: String,
    decoded: Result<Object, crate::object::DecodeError>,
    ignored: Vec<String>,
    at: &dyn Fn(&str) -> usize,
    fields: FieldValidation,
) -> Result<Manifest, Vec<String>> {
    let object = decoded.map_err(|e| {
        vec![format!(
            "{label}: {}: {} (line {})",
            e.path,
            e.message,
            at(&e.path)
        )]
    })?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for path in ignored {
        if known_unimplemented(kind, &path) {
            warnings.push(format!(
                "{label}: {path}: skiff does not implement this Kubernetes field; it is ignored (line {})",
                at(&path)
            ));
        } else {
            match fields {
                FieldValidation::Strict => errors.push(format!(
                    "{label}: {path}: unknown field (line {})",
                    at(&path)
                )),
                FieldValidation::Warn => warnings.push(format!(
                    "{label}: unknown field {path:?} (line {})",
                    at(&path)
                )),
                FieldValidation::Ignore => {}
            }
        }
    }
    let (errs, no_effect) = validate_with_warnings(&object);
    for w in no_effect {
        warnings.push(format!(
            "{label}: {}: {} (line {})",
            w.path,
            w.message,
            at(&w.path)
        ));
    }
    for e in errs {
        errors.push(format!(
            "{label}: {}: {} (line {})",
            e.path,
            e.message,
            at(&e.path)
        ));
    }
    if errors.is_empty() {
        Ok(Manifest {
            object,
            warnings,
            label,
        })
    } else {
        Err(errors)
    }
}

/// What decoding does with a field the model does not hold and Kubernetes does not know
/// either: Kubernetes' `fieldValidation` (`Strict` refuses the object, `Warn` drops the
/// field with a warning, `Ignore` drops it). Known Kubernetes fields skiff does not
/// implement are warnings in every mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// An error naming the field.
    #[default]
    Strict,
    /// A warning naming the field; the field is dropped.
    Warn,
    /// The field is dropped.
    Ignore,
}

impl FieldValidation {
    /// Reads Kubernetes' parameter value.
    pub fn parse(s: &str) -> Result<FieldValidation, String> {
        match s {
            "Strict" | "" => Ok(FieldValidation::Strict),
            "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            other => Err(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
            )),
        }
    }
}

/// Decodes and validates one object from JSON text (the server's path: no lines, no
/// intermediate `Value`).
pub fn parse_json(text: &str) -> Result<Manifest, ManifestError> {
    parse_json_with(text, FieldValidation::Strict)
}

/// [`parse_json`] with unknown fields handled as `fields` says.
pub fn parse_json_with(text: &str, fields: FieldValidation) -> Result<Manifest, ManifestError> {
    let one = |e: String| ManifestError { errors: vec![e] };
    let hn: HeadWithName =
        serde_json::from_str(text).map_err(|e| one(format!("invalid JSON: {e}")))?;
    let head = Head {
        name: hn.metadata.and_then(|m| m.name),
        ..hn.head
    };
    let no_lines = |_: &str| 0usize;
    let strip = |errors: Vec<String>| ManifestError {
        errors: errors
            .into_iter()
            .map(|e| e.trim_end_matches(" (line 0)").to_string())
            .collect(),
    };
    let (kind, label) = check_head(&head, 1, &no_lines).map_err(strip)?;
    let mut ignored = Vec::new();
    let decoded = Object::decode_json(kind, text, &mut |p| ignored.push(p));
    let mut m = finish(kind, label, decoded, ignored, &no_lines, fields).map_err(strip)?;
    for w in &mut m.warnings {
        if let Some(t) = w.strip_suffix(" (line 0)") {
            *w = t.to_string();
        }
    }
    Ok(m)
}

/// Kubernetes fields of the supported kinds that skiff reads but does not act on.
fn known_unimplemented(kind: Kind, path: &str) -> bool {
    // A data table: the names below are most of its length.
    // Segments without indices: `spec.template.spec.containers[0].tty` → [spec, template, spec, containers, tty].
    let segs: Vec<&str> = path
        .split('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .collect();
    let Some((field, parents)) = segs.split_last() else {
        return false;
    };
    let parent = parents.last().copied().unwrap_or("");
    let is_pod_spec = (kind == Kind::Pod && parents == ["spec"])
        || (parents.len() >= 2 && parents[parents.len() - 2] == "template" && parent == "spec");
    let list: &[&str] = if is_pod_spec {
        &[
            "automountServiceAccountToken",
            "schedulerName",
            "enableServiceLinks",
            "runtimeClassName",
            "shareProcessNamespace",
            "topologySpreadConstraints",
            "hostPID",
            "hostIPC",
            "readinessGates",
            "overhead",
            "setHostnameAsFQDN",
            "os",
            "ephemeralContainers",
            "resourceClaims",
            "hostUsers",
            "resources",
        ]
    } else if parents.is_empty() {
        match kind {
            Kind::Event => &[
                "eventTime",
                "series",
                "related",
                "deprecatedSource",
                "deprecatedFirstTimestamp",
                "deprecatedLastTimestamp",
                "deprecatedCount",
            ],
            Kind::StorageClass => &["allowVolumeExpansion", "mountOptions", "allowedTopologies"],
            _ => &[],
        }
    } else if parents == ["spec"] {
        match kind {
            Kind::Service => &[
                "externalTrafficPolicy",
                "internalTrafficPolicy",
                "externalIPs",
                "externalName",
                "loadBalancerIP",
                "loadBalancerSourceRanges",
                "loadBalancerClass",
                "ipFamilies",
                "ipFamilyPolicy",
                "allocateLoadBalancerNodePorts",
                "healthCheckNodePort",
                "trafficDistribution",
            ],
            Kind::StatefulSet => &["ordinals"],
            Kind::PersistentVolume => &["mountOptions", "volumeAttributesClassName"],
            Kind::PersistentVolumeClaim => {
                &["dataSource", "dataSourceRef", "volumeAttributesClassName"]
            }
            Kind::Job => &["podReplacementPolicy", "managedBy"],
            Kind::Node => &["configSource", "externalID"],
            _ => &[],
        }
    } else {
        match parent {
            "metadata" => &["selfLink", "clusterName"],
            "containers" | "initContainers" => &[
                "terminationMessagePath",
                "terminationMessagePolicy",
                "resizePolicy",
                "volumeDevices",
                // Behind a feature gate: Kubernetes accepts and drops it when the gate is off.
                "restartPolicyRules",
            ],
            // Behind a feature gate (as `restartPolicyRules`, `cgroupOptions`).
            "emptyDir" => &["mode"],
            "securityContext" => &[
                "seccompProfile",
                "seLinuxOptions",
                "appArmorProfile",
                "procMount",
                "windowsOptions",
                "sysctls",
                "fsGroupChangePolicy",
                "supplementalGroupsPolicy",
                "seLinuxChangePolicy",
                "cgroupOptions",
            ],
            "livenessProbe" | "readinessProbe" | "startupProbe" => &["grpc"],
            "lifecycle" => &["stopSignal"],
            "preStop" => &["sleep"],
            "resources" => &["claims"],
            "volumeMounts" => &["mountPropagation", "subPathExpr", "recursiveReadOnly"],
            "volumes" => &[
                "nfs",
                "csi",
                "ephemeral",
                "iscsi",
                "rbd",
                "cephfs",
                "gitRepo",
                "image",
                "fc",
                "local",
            ],
            "podAffinityTerm" | "requiredDuringSchedulingIgnoredDuringExecution" => {
                &["matchLabelKeys", "mismatchLabelKeys"]
            }
            "status" => &[
                "qosClass",
                "hostIPs",
                "nominatedNodeName",
                "ephemeralContainerStatuses",
                "resize",
                "resourceClaimStatuses",
                "daemonEndpoints",
                "images",
                "volumesInUse",
                "volumesAttached",
                "collisionCount",
                "terminating",
                "ready",
                "uncountedTerminatedPods",
                "loadBalancer",
                "config",
                "runtimeHandlers",
                "features",
            ],
            "containerStatuses" | "initContainerStatuses" => &[
                "allocatedResources",
                "resources",
                "user",
                "volumeMounts",
                "stopSignal",
                "allocatedResourcesStatus",
            ],
            _ => &[],
        }
    };
    list.contains(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"#;

    #[test]
    fn kubernetes_docs_deployment_applies() {
        let m = parse_manifests(DEPLOYMENT).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].label, "deployment \"nginx-deployment\"");
        let Object::Deployment(d) = &m[0].object else {
            panic!()
        };
        assert_eq!(d.spec.replicas, Some(3));
        assert!(m[0].warnings.is_empty());
    }

    /// The Kubernetes docs' CronJob (`application/job/cronjob.yaml`).
    const CRONJOB: &str = "apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: \"* * * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
";

    #[test]
    fn kubernetes_docs_cronjob_applies_and_bad_ones_name_the_field() {
        let m = parse_manifests(CRONJOB).unwrap();
        let Object::CronJob(c) = &m[0].object else {
            panic!()
        };
        assert_eq!(c.spec.schedule, "* * * * *");
        assert!(m[0].warnings.is_empty(), "{:?}", m[0].warnings);
        let bad = CRONJOB
            .replace(
                "\"* * * * *\"",
                "\"*/5 * * * * *\"\n  concurrencyPolicy: Sometimes",
            )
            .replace("restartPolicy: OnFailure", "restartPolicy: Always");
        let e = parse_manifests(&bad).unwrap_err();
        let text = e.errors.join("\n");
        for want in [
            "spec.schedule: Invalid value: \"*/5 * * * * *\": expected exactly 5 fields, found 6: */5 * * * * *",
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\"",
            "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\"",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }

    #[test]
    fn typo_is_an_error_with_path_and_line() {
        let bad = DEPLOYMENT.replace(
            "image: nginx:1.14.2",
            "image: nginx:1.14.2\n        imagePullPolcy: Always",
        );
        let e = parse_manifests(&bad).unwrap_err();
        assert_eq!(
            e.errors,
            vec!["deployment \"nginx-deployment\": spec.template.spec.containers[0].imagePullPolcy: unknown field (line 20)"]
        );
    }

    #[test]
    fn fields_kept_without_effect_are_named_in_warnings() {
        let w = DEPLOYMENT
            .replace(
                "      containers:",
                "      priorityClassName: high\n      imagePullSecrets: [{name: regcred}]\n      activeDeadlineSeconds: 60\n      containers:",
            )
            .replace(
                "        - containerPort: 80\n",
                "        - containerPort: 80\n          hostPort: 8080\n        resources:\n          requests: {cpu: 100m, ephemeral-storage: 1Gi, example.com/gpu: 1}\n          limits: {ephemeral-storage: 2Gi, example.com/gpu: 1, hugepages-2Mi: 4Mi}\n",
            );
        let m = parse_manifests(&w).unwrap();
        let w = &m[0].warnings;
        for path in [
            "spec.template.spec.containers[0].resources.limits[ephemeral-storage]: skiff does not implement",
            "spec.template.spec.containers[0].resources.limits[hugepages-2Mi]: skiff does not implement",
        ] {
            assert!(w.iter().any(|x| x.contains(path)), "{path}: {w:?}");
        }
        // What works is not named.
        for counted in [
            "requests[cpu]",
            "requests[ephemeral-storage]",
            "example.com/gpu",
            "activeDeadlineSeconds",
            "priorityClassName",
            "imagePullSecrets",
            "hostPort",
        ] {
            assert!(!w.iter().any(|x| x.contains(counted)), "{counted}: {w:?}");
        }
        assert!(
            w.iter()
                .any(|x| x.contains("hugepages-2Mi") && x.ends_with("(line 28)")),
            "{w:?}"
        );
        // The object is kept as written.
        assert!(m[0].object.to_value()["spec"]["template"]["spec"]["priorityClassName"] == "high");
    }

    /// `hostAliases` (the docs' `hostaliases-pod.yaml`) are read; a bad address or name is
    /// named by its path.
    #[test]
    fn host_aliases_are_read_and_checked() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: hostaliases-pod}\nspec:\n  restartPolicy: Never\n  hostAliases:\n  - ip: \"127.0.0.1\"\n    hostnames: [\"foo.local\", \"bar.local\"]\n  - ip: \"10.1.2.3\"\n    hostnames: [\"foo.remote\", \"bar.remote\"]\n  containers:\n  - name: cat-hosts\n    image: busybox:1.28\n    command: [cat]\n    args: [\"/etc/hosts\"]\n";
        let m = parse_manifests(pod).unwrap_or_else(|e| panic!("{e}"));
        assert!(m[0].warnings.is_empty(), "{:?}", m[0].warnings);
        let bad = pod
            .replace("10.1.2.3", "10.1.2")
            .replace("foo.remote", "Foo_remote");
        let e = parse_manifests(&bad).unwrap_err().to_string();
        assert!(
            e.contains(
                "spec.hostAliases[1].ip: Invalid value: \"10.1.2\": must be a valid IP address"
            ),
            "{e}"
        );
        assert!(
            e.contains("spec.hostAliases[1].hostnames[0]: Invalid value: \"Foo_remote\""),
            "{e}"
        );
    }

    /// Fields behind Kubernetes feature gates are warned about, not refused: Kubernetes
    /// accepts such objects (and drops the field while the gate is off).
    #[test]
    fn feature_gated_fields_are_warnings() {
        let w = DEPLOYMENT
            .replace(
                "        image: nginx:1.14.2\n",
                "        image: nginx:1.14.2\n        restartPolicyRules: []\n        securityContext:\n          cgroupOptions: {}\n        volumeMounts: [{name: scratch, mountPath: /s}]\n",
            )
            .replace(
                "      containers:",
                "      volumes:\n      - name: scratch\n        emptyDir:\n          mode: \"0755\"\n      containers:",
            );
        let m = parse_manifests(&w).unwrap_or_else(|e| panic!("{e}"));
        let warned = |f: &str| {
            m[0].warnings
                .iter()
                .any(|w| w.contains(f) && w.contains("skiff does not implement"))
        };
        for f in ["restartPolicyRules", "cgroupOptions", "emptyDir.mode"] {
            assert!(warned(f), "{f}: {:?}", m[0].warnings);
        }
    }

    #[test]
    fn known_field_is_a_warning() {
        let w = DEPLOYMENT.replace(
            "      containers:",
            "      shareProcessNamespace: true\n      containers:",
        );
        let m = parse_manifests(&w).unwrap();
        assert_eq!(m[0].warnings.len(), 1);
        assert!(
            m[0].warnings[0]
                .contains("spec.template.spec.shareProcessNamespace: skiff does not implement"),
            "{:?}",
            m[0].warnings
        );
        assert!(
            m[0].warnings[0].ends_with("(line 17)"),
            "{:?}",
            m[0].warnings
        );
    }

    #[test]
    fn wrong_type_names_path_and_line() {
        let bad = DEPLOYMENT.replace("replicas: 3", "replicas: three");
        let e = parse_manifests(&bad).unwrap_err();
        assert_eq!(e.errors.len(), 1);
        assert!(
            e.errors[0].starts_with(
                "deployment \"nginx-deployment\": spec.replicas: invalid type: string \"three\""
            ),
            "{e}"
        );
        assert!(e.errors[0].ends_with("(line 8)"), "{e}");
    }

    #[test]
    fn validation_errors_have_lines() {
        let bad = DEPLOYMENT.replace(
            "      labels:\n        app: nginx\n",
            "      labels:\n        app: other\n",
        );
        let e = parse_manifests(&bad).unwrap_err();
        assert!(
            e.errors[0].contains("spec.template.metadata.labels: Invalid value"),
            "{e}"
        );
        assert!(
            e.errors[0].contains("`selector` does not match template `labels`"),
            "{e}"
        );
        assert!(e.errors[0].ends_with("(line 14)"), "{e}");
    }

    #[test]
    fn extended_resources_are_whole_limited_and_requested_as_limited() {
        let with = |res: &str| {
            DEPLOYMENT.replace(
                "        - containerPort: 80\n",
                &format!("        - containerPort: 80\n        resources:\n{res}"),
            )
        };
        let base = "spec.template.spec.containers[0].resources";
        for (res, want) in [
            (
                "          requests: {example.com/gpu: 1}\n",
                format!("{base}.limits[example.com/gpu]: Required value: Limit must be set for non overcommitable resources"),
            ),
            (
                "          requests: {example.com/gpu: 1}\n          limits: {example.com/gpu: 2}\n",
                format!("{base}.requests[example.com/gpu]: Invalid value: \"1\": must be equal to example.com/gpu limit of 2"),
            ),
            (
                "          limits: {example.com/gpu: 500m}\n",
                format!("{base}.limits[example.com/gpu]: Invalid value: \"500m\": must be an integer"),
            ),
            (
                "          limits: {kubernetes.io/gpu: 1}\n",
                format!("{base}.limits[kubernetes.io/gpu]: Unsupported value: \"kubernetes.io/gpu\""),
            ),
        ] {
            let e = parse_manifests(&with(res)).unwrap_err();
            assert!(e.errors.iter().any(|x| x.contains(&want)), "{res}: {e}");
        }
        // Limits alone, equal requests, and the memory-like overcommit stay valid.
        for ok in [
            "          limits: {example.com/gpu: 2}\n",
            "          requests: {example.com/gpu: 2000m}\n          limits: {example.com/gpu: 2}\n",
            "          requests: {ephemeral-storage: 1Gi}\n",
        ] {
            parse_manifests(&with(ok)).unwrap();
        }
    }

    #[test]
    fn every_document_is_checked() {
        let two = format!("{DEPLOYMENT}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: Bad_Name\nspec:\n  ports:\n  - port: 70000\n");
        let e = parse_manifests(&two).unwrap_err();
        assert_eq!(e.errors.len(), 2, "{e}");
        assert!(
            e.errors[0].starts_with("service \"Bad_Name\": metadata.name: Invalid value"),
            "{e}"
        );
        assert!(e.errors[0].ends_with("(line 26)"), "{e}");
        assert!(e.errors[1].contains("spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive (line 29)"), "{e}");
    }

    #[test]
    fn unsupported_kind_and_api_version() {
        let e = parse_manifests("apiVersion: v1\nkind: Widget\nmetadata: {name: x}\n").unwrap_err();
        assert!(
            e.errors[0].contains("kind: Unsupported value: \"Widget\""),
            "{e}"
        );
        let e =
            parse_manifests("apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\n").unwrap_err();
        assert!(e.errors[0].contains("apiVersion: Unsupported value: \"v1\": Deployment is served as \"apps/v1\" (line 1)"), "{e}");
    }

    #[test]
    fn server_json_path_matches_the_yaml_path() {
        let m = parse_manifests(DEPLOYMENT).unwrap().remove(0);
        let text = m.object.to_value().to_string();
        assert_eq!(parse_json(&text).unwrap().object, m.object);
        let bad = text
            .replace("\"imagePullPolicy\"", "\"imagePullPolcy\"")
            .replace("\"image\":", "\"imagePullPolcy\":\"Always\",\"image\":");
        let e = parse_json(&bad).unwrap_err();
        assert_eq!(e.errors, vec!["deployment \"nginx-deployment\": spec.template.spec.containers[0].imagePullPolcy: unknown field"]);
        assert!(parse_json("{\"kind\": \"Pod\"} trailing").is_err());
        let unknown = text.replace("\"replicas\":3", "\"replicas\":3,\"replicaz\":1");
        assert!(parse_json(&unknown).is_err());
        let warned = parse_json_with(&unknown, FieldValidation::Warn).unwrap();
        assert_eq!(warned.object, m.object, "the unknown field is dropped");
        assert!(
            warned
                .warnings
                .iter()
                .any(|w| w.contains("unknown field \"spec.replicaz\"")),
            "{:?}",
            warned.warnings
        );
        let ignored = parse_json_with(&unknown, FieldValidation::Ignore).unwrap();
        assert_eq!(ignored.object, m.object);
        assert!(ignored.warnings.iter().all(|w| !w.contains("replicaz")));
        assert!(FieldValidation::parse("Loose").is_err());
        let e = parse_json(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.errors, vec!["pod \"p\": spec.containers: Required value"]);
        // A type error is found without the path and decoded again to name it.
        let e = parse_json(&text.replace("\"replicas\":3", "\"replicas\":\"three\"")).unwrap_err();
        assert!(
            e.errors[0].contains(": spec.replicas: invalid type: string \"three\""),
            "{e}"
        );
        // Fields the model does not hold are heard once each.
        let mut heard = Vec::new();
        Object::decode_json(Kind::Deployment, &bad, &mut |p| heard.push(p)).unwrap();
        assert_eq!(heard, ["spec.template.spec.containers[0].imagePullPolcy"]);
    }

    #[test]
    fn json_and_lists() {
        let j = r#"{"kind":"List","apiVersion":"v1","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}},{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}]}"#;
        let m = parse_manifests(j).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].object.kind(), Kind::Namespace);
        let e = parse_manifests("{\"kind\": ").unwrap_err();
        assert!(e.errors[0].starts_with("invalid"), "{e}");
    }

    #[test]
    fn a_sidecar_with_probes_and_hooks_is_valid() {
        // The documentation's sidecar pattern (application/deployment-sidecar.yaml), with a
        // startup probe and a preStop hook on the sidecar.
        let y = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: myapp}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: myapp}}\n  template:\n    metadata: {labels: {app: myapp}}\n    spec:\n      containers:\n      - name: myapp\n        image: alpine:latest\n        command: ['sh', '-c', 'while true; do echo \"logging\" >> /opt/logs.txt; sleep 1; done']\n        volumeMounts: [{name: data, mountPath: /opt}]\n      initContainers:\n      - name: logshipper\n        image: alpine:latest\n        restartPolicy: Always\n        command: ['sh', '-c', 'tail -F /opt/logs.txt']\n        startupProbe: {exec: {command: [cat, /opt/logs.txt]}}\n        lifecycle: {preStop: {exec: {command: [sleep, '1']}}}\n        volumeMounts: [{name: data, mountPath: /opt}]\n      volumes: [{name: data, emptyDir: {}}]\n";
        let m = parse_manifests(y).unwrap();
        assert!(m[0].warnings.is_empty(), "{:?}", m[0].warnings);
        let Object::Deployment(d) = &m[0].object else {
            panic!()
        };
        assert!(d.spec.template.spec.init_containers[0].is_sidecar());
    }

    #[test]
    fn validation_catalogue() {
        let pod =
            |spec: &str| format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{spec}");
        let cases = [
            ("  containers: []\n", "spec.containers: Required value"),
            ("  volumes:\n  - name: v\n    projected:\n      sources:\n      - configMap: {name: a}\n        secret: {name: b}\n  containers: [{name: a, image: x}]\n", "spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type per source"),
            ("  volumes:\n  - name: v\n    projected:\n      sources:\n      - configMap: {name: a, items: [{key: k, path: p}]}\n      - secret: {name: b, items: [{key: k, path: p}]}\n  containers: [{name: a, image: x}]\n", "spec.volumes[0].projected.sources[1].secret.items[0].path: Invalid value: \"p\": conflicting duplicate paths"),
            ("  volumes:\n  - name: v\n    projected:\n      sources:\n      - serviceAccountToken: {path: t, expirationSeconds: 60}\n  containers: [{name: a, image: x}]\n", "expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
            ("  volumes:\n  - name: v\n    downwardAPI:\n      items: [{path: ip, fieldRef: {fieldPath: status.podIP}}]\n  containers: [{name: a, image: x}]\n", "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: \"status.podIP\""),
            ("  volumes:\n  - name: v\n    downwardAPI:\n      items: [{path: ../up, fieldRef: {fieldPath: metadata.name}}]\n  containers: [{name: a, image: x}]\n", "spec.volumes[0].downwardAPI.items[0].path: Invalid value: \"../up\": must not contain '..'"),
            ("  volumes:\n  - name: v\n    downwardAPI:\n      items: [{path: cpu, resourceFieldRef: {resource: limits.cpu}}]\n  containers: [{name: a, image: x}]\n", "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: Required value"),
            ("  volumes:\n  - name: v\n    downwardAPI:\n      defaultMode: 01000\n      items: [{path: n, fieldRef: {fieldPath: metadata.name}}]\n  containers: [{name: a, image: x}]\n", "spec.volumes[0].downwardAPI.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive"),
            ("  containers:\n  - name: a\n    image: x\n    env:\n    - name: C\n      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1Mi}}\n", "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: \"1Mi\": only divisor's values 1m and 1 are supported with the cpu resource"),
            ("  containers:\n  - name: a\n    image: x\n    env:\n    - name: C\n      valueFrom: {resourceFieldRef: {resource: limits.gpu}}\n", "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource: Unsupported value: \"limits.gpu\""),
            ("  initContainers:\n  - name: i\n    image: x\n    restartPolicy: Never\n  containers:\n  - name: a\n    image: x\n", "spec.initContainers[0].restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""),
            ("  containers:\n  - name: a\n    image: x\n    restartPolicy: Always\n", "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"),
            ("  initContainers:\n  - name: i\n    image: x\n    startupProbe: {exec: {command: [\"true\"]}}\n  containers:\n  - name: a\n    image: x\n", "spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always"),
            ("  restartPolicy: Sometimes\n  containers:\n  - name: a\n    image: x\n", "spec.restartPolicy: Unsupported value: \"Sometimes\""),
            ("  containers:\n  - name: a\n    image: x\n  - name: a\n    image: y\n", "spec.containers[1].name: Duplicate value: \"a\""),
            ("  containers:\n  - name: A\n    image: x\n", "spec.containers[0].name: Invalid value: \"A\""),
            ("  containers:\n  - name: a\n", "spec.containers[0].image: Required value"),
            ("  containers:\n  - name: a\n    image: x\n    ports:\n    - containerPort: 0\n", "spec.containers[0].ports[0].containerPort: Invalid value: 0"),
            ("  containers:\n  - name: a\n    image: x\n    imagePullPolicy: Sometimes\n", "imagePullPolicy: Unsupported value"),
            ("  containers:\n  - name: a\n    image: x\n    resources:\n      requests: {memory: 2Gi}\n      limits: {memory: 1Gi}\n", "must be less than or equal to memory limit"),
            ("  containers:\n  - name: a\n    image: x\n    volumeMounts:\n    - name: nope\n      mountPath: /x\n", "volumeMounts[0].name: Not found: \"nope\""),
            ("  containers:\n  - name: a\n    image: x\n    livenessProbe:\n      periodSeconds: 0\n      exec: {command: [\"true\"]}\n", "livenessProbe.periodSeconds: Invalid value: 0"),
            ("  containers:\n  - name: a\n    image: x\n    resources:\n      limits: {cpu: lots}\n", "quantities must match"),
        ];
        for (spec, want) in cases {
            let e = parse_manifests(&pod(spec)).unwrap_err();
            assert!(
                e.errors.iter().any(|x| x.contains(want)),
                "want {want:?} in {e}"
            );
        }
        let meta_cases = [
            ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {\"a b\": x}\n", "metadata.labels[a b]: Invalid value"),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {a: \"-x\"}\n", "metadata.labels[a]: Invalid value: \"-x\""),
            ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name: Required value"),
            ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: \"not base64!\"}\n", "data[k]: Invalid value: <secret contents redacted>: illegal base64 data"),
            ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 70000}]\n", "nodePort: Invalid value: 70000"),
            ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: x}]\n", "spec.selector: Required value"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers: [{name: a, image: x}]\n", "restartPolicy: Unsupported value: \"Always\""),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  completionMode: Indexed\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.completions: Required value: when completion mode is Indexed"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  completionMode: Sometimes\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.completionMode: Unsupported value: \"Sometimes\""),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  completions: 3\n  backoffLimitPerIndex: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  completions: 3\n  completionMode: Indexed\n  backoffLimitPerIndex: 1\n  maxFailedIndexes: 4\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.maxFailedIndexes: Invalid value: 4: must be less than or equal to completions"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {operator: In, values: [0]}\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  podFailurePolicy:\n    rules:\n    - action: FailIndex\n      onExitCodes: {operator: In, values: [3]}\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.podFailurePolicy.rules[0].action: Forbidden: requires the backoffLimitPerIndex to be set"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  podFailurePolicy:\n    rules:\n    - action: Ignore\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.podFailurePolicy.rules[0]: Invalid value: : specifying one of OnExitCodes and OnPodConditions is required"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  completions: 3\n  completionMode: Indexed\n  successPolicy:\n    rules: [{succeededIndexes: \"1-5\"}]\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.successPolicy.rules[0].succeededIndexes: Invalid value: \"1-5\": too large: 5, must be less than completions 3"),
            ("apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  completions: 3\n  successPolicy:\n    rules: [{succeededCount: 1}]\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: a, image: x}]\n", "spec.successPolicy: Invalid value: : requires indexed completion mode"),
        ];
        for (doc, want) in meta_cases {
            let e = parse_manifests(doc).unwrap_err();
            assert!(
                e.errors.iter().any(|x| x.contains(want)),
                "want {want:?} in {e}"
            );
        }
    }

    #[test]
    fn ingress_from_the_kubernetes_docs_applies() {
        let doc = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: tls-example-ingress\n  annotations:\n    nginx.ingress.kubernetes.io/rewrite-target: /\nspec:\n  ingressClassName: skiff\n  tls:\n  - hosts:\n      - https-example.foo.com\n    secretName: testsecret-tls\n  defaultBackend:\n    service: {name: fallback, port: {number: 80}}\n  rules:\n  - host: https-example.foo.com\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: service1\n            port:\n              number: 80\n  - host: \"*.foo.com\"\n    http:\n      paths:\n      - path: /api\n        pathType: Exact\n        backend:\n          service: {name: api, port: {name: http}}\n";
        let m = parse_manifests(doc).unwrap();
        let Object::Ingress(ing) = &m[0].object else {
            panic!("not an Ingress")
        };
        assert_eq!(ing.tls_secret_names(), vec!["testsecret-tls".to_string()]);
        assert_eq!(ing.class(), Some("skiff"));
        assert_eq!(ing.spec.rules[1].host.as_deref(), Some("*.foo.com"));
        assert_eq!(
            ing.spec.rules[1].http.as_ref().unwrap().paths[0]
                .backend
                .service
                .as_ref()
                .unwrap()
                .port
                .name
                .as_deref(),
            Some("http")
        );
    }

    #[test]
    fn ingress_validation_names_the_field() {
        let ing = |spec: &str| {
            format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i}}\nspec:\n{spec}")
        };
        let path = |p: &str| {
            ing(&format!(
                "  rules:\n  - host: a.example\n    http:\n      paths:\n      - {p}\n"
            ))
        };
        let cases = [
            (ing("  tls: []\n"), "spec.rules: Required value: either `defaultBackend` or `rules` must be specified"),
            (path("path: /\n        backend: {service: {name: web, port: {number: 80}}}"), "spec.rules[0].http.paths[0].pathType: Required value"),
            (path("path: /\n        pathType: Regex\n        backend: {service: {name: web, port: {number: 80}}}"), "pathType: Unsupported value: \"Regex\""),
            (path("path: api\n        pathType: Prefix\n        backend: {service: {name: web, port: {number: 80}}}"), "spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path"),
            (path("path: /\n        pathType: Prefix\n        backend: {service: {name: web, port: {number: 80, name: http}}}"), "backend.service.port: Invalid value: : cannot set both port name & port number"),
            (path("path: /\n        pathType: Prefix\n        backend: {service: {name: web, port: {}}}"), "backend.service.port: Invalid value: : port name or number is required"),
            (path("path: /\n        pathType: Prefix\n        backend: {service: {name: web, port: {number: 0}}}"), "backend.service.port.number: Invalid value: 0"),
            (path("path: /\n        pathType: Prefix\n        backend: {service: {name: Web, port: {number: 80}}}"), "backend.service.name: Invalid value: \"Web\""),
            (path("path: /\n        pathType: Prefix\n        backend: {resource: {kind: Bucket, name: b}}"), "spec.rules[0].http.paths[0].backend.resource: Unsupported value"),
            (path("path: /\n        pathType: Prefix\n        backend: {}"), "spec.rules[0].http.paths[0].backend.service: Required value"),
            (ing("  rules:\n  - host: 10.0.0.1\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: w, port: {number: 1}}}}]}\n"), "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"),
            (ing("  rules:\n  - host: a.*.com\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: w, port: {number: 1}}}}]}\n"), "spec.rules[0].host: Invalid value: \"a.*.com\": a wildcard DNS-1123 subdomain"),
            (ing("  rules:\n  - host: a.example\n    http: {paths: []}\n"), "spec.rules[0].http.paths: Required value"),
            (ing("  defaultBackend: {service: {name: w, port: {number: 1}}}\n  tls: [{hosts: [\"A_B\"], secretName: s}]\n"), "spec.tls[0].hosts[0]: Invalid value: \"A_B\""),
        ];
        for (doc, want) in cases {
            let e = parse_manifests(&doc).unwrap_err();
            assert!(
                e.errors.iter().any(|x| x.contains(want)),
                "want {want:?} in {e}"
            );
        }
    }
}
