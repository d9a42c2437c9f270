//! Field selectors (`fieldSelector=spec.nodeName=n1,status.phase!=Running`) over the fields
//! Kubernetes lets each kind select by; any other field is refused as Kubernetes refuses
//! it (`field label not supported`). Pure.

use serde_json::Value;
use skiff_api::Kind;

/// A parsed field selector: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<Term>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    equal: bool,
    value: String,
}

/// The fields a kind may be selected by, besides `metadata.name` and `metadata.namespace`.
fn selectable(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Pod => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        Kind::Node => &["spec.unschedulable"],
        Kind::Event => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        Kind::Secret => &["type"],
        Kind::ReplicaSet | Kind::StatefulSet => &["status.replicas"],
        Kind::Job => &["status.successful"],
        Kind::Namespace => &["status.phase"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Reads a selector for `kind`.
    pub fn parse(kind: Kind, s: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = t.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = t.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = t.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{t}'"));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace")
                && !selectable(kind).contains(&field)
            {
                return Err(format!(
                    "field label not supported: {field} (for {})",
                    kind.info().plural
                ));
            }
            terms.push(Term {
                field: field.to_string(),
                equal,
                value: value.trim().to_string(),
            });
        }
        Ok(FieldSelector(terms))
    }

    /// Selects everything?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Does the object (its JSON) pass?
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|t| {
            let v = t
                .field
                .split('.')
                .try_fold(object, |v, k| v.get(k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    // `source` of an Event is `{component, host}`; selected by component.
                    Value::Object(m) => m
                        .get("component")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    other => other.to_string(),
                })
                .unwrap_or_else(|| {
                    // Unset booleans select as false, as Kubernetes' defaulted fields do.
                    if t.field == "spec.unschedulable" || t.field == "spec.hostNetwork" {
                        "false".into()
                    } else {
                        String::new()
                    }
                });
            (v == t.value) == t.equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_by_node_and_phase() {
        let p = json!({"metadata": {"name": "a", "namespace": "default"},
                       "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse(Kind::Pod, "spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert!(s.matches(&p));
        let s = FieldSelector::parse(Kind::Pod, "spec.nodeName==n2").unwrap();
        assert!(!s.matches(&p));
        let s =
            FieldSelector::parse(Kind::Pod, "metadata.name=a,metadata.namespace=default").unwrap();
        assert!(s.matches(&p));
        let s = FieldSelector::parse(Kind::Pod, "spec.nodeName=").unwrap();
        assert!(!s.matches(&p));
        assert!(FieldSelector::parse(Kind::Pod, "").unwrap().is_empty());
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let e = FieldSelector::parse(Kind::Deployment, "spec.replicas=1").unwrap_err();
        assert!(
            e.contains("field label not supported: spec.replicas"),
            "{e}"
        );
        assert!(FieldSelector::parse(Kind::Pod, "nonsense").is_err());
    }

    #[test]
    fn nodes_by_unschedulable_default_false() {
        let s = FieldSelector::parse(Kind::Node, "spec.unschedulable=false").unwrap();
        assert!(s.matches(&json!({"metadata": {"name": "n"}})));
        assert!(!s.matches(&json!({"spec": {"unschedulable": true}})));
    }

    #[test]
    fn events_by_involved_object() {
        let e = json!({"involvedObject": {"kind": "Pod", "name": "web"}, "source": {"component": "kubelet"}});
        let s = FieldSelector::parse(
            Kind::Event,
            "involvedObject.kind=Pod,involvedObject.name=web,source=kubelet",
        )
        .unwrap();
        assert!(s.matches(&e));
    }
}
