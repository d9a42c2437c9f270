//! The downward API: what a pod may learn of itself, as the kubelet gives it. Fields of
//! the pod (`metadata.name`, `metadata.labels`...) and containers' resources
//! (`limits.memory` in a divisor's units; a limit not set is the node's allocatable), for
//! environment variables and for the files of `downwardAPI` volumes and projections.
//! Pure: the worker hands in the node's allocatable.

use skiff_api::pod::{DownwardApiVolumeFile, Pod, ResourceFieldSelector};
use skiff_api::quantity::Quantity;
use skiff_runtime::ProjectedFile;
use std::collections::BTreeMap;

/// `metadata.name`, `metadata.labels['app']`, `status.podIP`...
pub fn field_value(pod: &Pod, path: &str, host_ip: &str, pod_ip: &str) -> Result<String, String> {
    let m = &pod.metadata;
    let indexed = |prefix: &str, map: &BTreeMap<String, String>| -> Option<String> {
        let rest = path.strip_prefix(prefix)?;
        let key = rest.strip_prefix("['").and_then(|r| r.strip_suffix("']"))?;
        Some(map.get(key).cloned().unwrap_or_default())
    };
    if let Some(v) = indexed("metadata.labels", &m.labels) {
        return Ok(v);
    }
    if let Some(v) = indexed("metadata.annotations", &m.annotations) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => m.name().to_string(),
        "metadata.namespace" => m.namespace().to_string(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod.spec.node_name.clone().unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into()),
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        other => return Err(format!("unsupported fieldRef fieldPath {other:?}")),
    })
}

/// Kubernetes' rendering of a whole label or annotation map in a file: `key="value"`
/// lines, sorted by key, values quoted.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A pod field as a downward API volume file holds it (the fields a volume may name).
pub fn volume_field(pod: &Pod, path: &str) -> Result<String, String> {
    let m = &pod.metadata;
    match path {
        "metadata.labels" => return Ok(format_map(&m.labels)),
        "metadata.annotations" => return Ok(format_map(&m.annotations)),
        _ => {}
    }
    field_value(pod, path, "", "")
}

/// A container's resource (`limits.cpu`, `requests.memory`...) in `divisor` units,
/// rounded up, as the kubelet computes it. `container` names it (the env's own container
/// when the selector names none); a limit the container does not set is the node's
/// allocatable.
pub fn resource_value(
    pod: &Pod,
    container: &str,
    r: &ResourceFieldSelector,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let name = r
        .container_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(container);
    let Some(c) = pod
        .spec
        .containers
        .iter()
        .chain(&pod.spec.init_containers)
        .find(|c| c.name == name)
    else {
        return Err(format!(
            "resourceFieldRef: container {name:?} not found in the pod"
        ));
    };
    let Some((kind, resource)) = r.resource.split_once('.') else {
        return Err(format!(
            "unsupported resourceFieldRef resource {:?}",
            r.resource
        ));
    };
    let res = c.resources.as_ref();
    let set = match kind {
        "limits" => res.and_then(|x| x.limits.get(resource)),
        "requests" => res.and_then(|x| x.requests.get(resource).or(x.limits.get(resource))),
        _ => None,
    };
    let zero = Quantity::parse("0").expect("a quantity");
    let q = match (set, kind) {
        (Some(q), _) => q,
        (None, "limits") => allocatable.get(resource).unwrap_or(&zero),
        (None, _) => &zero,
    };
    let one = Quantity::parse("1").expect("a quantity");
    let divisor = r.divisor.as_ref().unwrap_or(&one);
    let ceil_div = |a: i64, b: i64| if b <= 0 { a } else { (a + b - 1).div_euclid(b) };
    Ok(match resource {
        "cpu" => ceil_div(q.millis(), divisor.millis()),
        _ => ceil_div(q.value(), divisor.value()),
    }
    .to_string())
}

/// The files of a downward API volume or projection.
pub fn files(
    pod: &Pod,
    items: &[DownwardApiVolumeFile],
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<Vec<ProjectedFile>, String> {
    items
        .iter()
        .map(|f| {
            let data = match (&f.field_ref, &f.resource_field_ref) {
                (Some(fr), _) => volume_field(pod, &fr.field_path)?,
                (None, Some(r)) => resource_value(pod, "", r, allocatable)?,
                (None, None) => String::new(),
            };
            Ok(ProjectedFile {
                path: f.path.clone(),
                data: data.into_bytes(),
                mode: f.mode.map(|m| m as u32),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn fields_and_resources_as_the_kubelet_gives_them() {
        // The documentation's dapi-volume and dapi-envars-resourcefieldref examples.
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata:
  name: kubernetes-downwardapi-volume-example
  namespace: default
  labels: {zone: us-est-coast, cluster: test-cluster1, rack: rack-22}
  annotations: {build: two, builder: john-doe}
spec:
  containers:
  - name: client-container
    image: busybox
    resources:
      requests: {memory: 32Mi, cpu: 125m}
      limits: {memory: 64Mi, cpu: 250m}
  - name: unlimited
    image: busybox
"#);
        assert_eq!(
            volume_field(&p, "metadata.labels").unwrap(),
            "cluster=\"test-cluster1\"\nrack=\"rack-22\"\nzone=\"us-est-coast\""
        );
        assert_eq!(
            volume_field(&p, "metadata.annotations").unwrap(),
            "build=\"two\"\nbuilder=\"john-doe\""
        );
        assert_eq!(
            volume_field(&p, "metadata.labels['rack']").unwrap(),
            "rack-22"
        );
        let alloc: BTreeMap<String, Quantity> = [
            ("cpu".to_string(), Quantity::parse("2").unwrap()),
            ("memory".to_string(), Quantity::parse("4Gi").unwrap()),
        ]
        .into();
        let r = |c: &str, res: &str, div: Option<&str>| {
            let sel = ResourceFieldSelector {
                container_name: Some(c.into()),
                resource: res.into(),
                divisor: div.map(|d| Quantity::parse(d).unwrap()),
            };
            resource_value(&p, "", &sel, &alloc).unwrap()
        };
        // 250m in whole CPUs rounds up to 1; in 1m units it is 250.
        assert_eq!(r("client-container", "limits.cpu", None), "1");
        assert_eq!(r("client-container", "limits.cpu", Some("1m")), "250");
        assert_eq!(r("client-container", "requests.cpu", Some("1m")), "125");
        assert_eq!(r("client-container", "limits.memory", Some("1Mi")), "64");
        assert_eq!(r("client-container", "requests.memory", None), "33554432");
        // No limit: the node's allocatable; no request: 0.
        assert_eq!(r("unlimited", "limits.cpu", Some("1m")), "2000");
        assert_eq!(r("unlimited", "limits.memory", Some("1Mi")), "4096");
        assert_eq!(r("unlimited", "requests.memory", None), "0");
        let missing = ResourceFieldSelector {
            container_name: Some("nope".into()),
            resource: "limits.cpu".into(),
            divisor: None,
        };
        let e = resource_value(&p, "", &missing, &alloc).unwrap_err();
        assert!(e.contains("container \"nope\" not found"), "{e}");
    }
}
