//! `autoscaling/v2`: HorizontalPodAutoscaler, which sets a Deployment's, ReplicaSet's or
//! StatefulSet's replicas from its pods' CPU and memory (resource metrics: the agents'
//! usage reports). `autoscaling/v1` manifests are read too (converted on input, as
//! Kubernetes converts them). Custom and external metrics are not served: such metrics are
//! refused, naming the field.

use crate::k8s_struct;
use crate::meta::{Condition, ObjectMeta};
use crate::print::{age, Page, Print};
use crate::resource::{NameRule, Resource};
use crate::validate::Problems;
use crate::Quantity;
use serde_json::{json, Value};

k8s_struct! {
    /// `autoscalingv2.HorizontalPodAutoscaler`.
    pub struct HorizontalPodAutoscaler {
        /// `autoscaling/v2`.
        pub api_version: String,
        /// `HorizontalPodAutoscaler`.
        pub kind: String,
        /// Standard metadata.
        pub metadata: ObjectMeta,
        /// What to scale and on which figures.
        pub spec: HorizontalPodAutoscalerSpec,
        /// What the autoscaler last saw and did.
        pub status: Option<HorizontalPodAutoscalerStatus>,
    }
}

k8s_struct! {
    /// `autoscalingv2.HorizontalPodAutoscalerSpec`.
    pub struct HorizontalPodAutoscalerSpec {
        /// The scaled object: a Deployment, ReplicaSet or StatefulSet in the same namespace.
        pub scale_target_ref: CrossVersionObjectReference,
        /// The fewest replicas (default 1).
        pub min_replicas: Option<i32>,
        /// The most replicas.
        pub max_replicas: i32,
        /// The figures to follow (default: CPU at 80 % of the requests); the highest
        /// proposal wins.
        pub metrics: Vec<MetricSpec>,
        /// How fast to scale each way (Kubernetes' defaults when absent).
        pub behavior: Option<HorizontalPodAutoscalerBehavior>,
    }
}

k8s_struct! {
    /// `autoscalingv2.CrossVersionObjectReference`.
    pub struct CrossVersionObjectReference {
        /// `Deployment`, `ReplicaSet` or `StatefulSet`.
        pub kind: String,
        /// Its name.
        pub name: String,
        /// Its API version (`apps/v1`).
        pub api_version: Option<String>,
    }
}

k8s_struct! {
    /// `autoscalingv2.MetricSpec`: `Resource` or `ContainerResource`.
    pub struct MetricSpec {
        /// `Resource` or `ContainerResource`.
        #[serde(rename = "type")]
        pub type_: String,
        /// A resource of the whole pod.
        pub resource: Option<ResourceMetricSource>,
        /// A resource of one container of each pod.
        pub container_resource: Option<ContainerResourceMetricSource>,
    }
}

k8s_struct! {
    /// `autoscalingv2.ResourceMetricSource`.
    pub struct ResourceMetricSource {
        /// `cpu` or `memory`.
        pub name: String,
        /// The target.
        pub target: MetricTarget,
    }
}

k8s_struct! {
    /// `autoscalingv2.ContainerResourceMetricSource`.
    pub struct ContainerResourceMetricSource {
        /// `cpu` or `memory`.
        pub name: String,
        /// The container whose figures count.
        pub container: String,
        /// The target.
        pub target: MetricTarget,
    }
}

k8s_struct! {
    /// `autoscalingv2.MetricTarget`: `Utilization` (percent of requests) or
    /// `AverageValue` (per pod).
    pub struct MetricTarget {
        /// `Utilization` or `AverageValue`.
        #[serde(rename = "type")]
        pub type_: String,
        /// Percent of the pods' requests.
        pub average_utilization: Option<i32>,
        /// Per pod.
        pub average_value: Option<Quantity>,
        /// For object and external metrics, which skiff does not serve.
        pub value: Option<Quantity>,
    }
}

k8s_struct! {
    /// `autoscalingv2.HorizontalPodAutoscalerBehavior`.
    pub struct HorizontalPodAutoscalerBehavior {
        /// Rules for scaling up (default: no window; 4 pods or 100 % per 15 s).
        pub scale_up: Option<HPAScalingRules>,
        /// Rules for scaling down (default: a 300 s window; 100 % per 15 s).
        pub scale_down: Option<HPAScalingRules>,
    }
}

k8s_struct! {
    /// `autoscalingv2.HPAScalingRules`.
    pub struct HPAScalingRules {
        /// Past recommendations considered (seconds, 0 to 3600).
        pub stabilization_window_seconds: Option<i32>,
        /// `Max`, `Min` or `Disabled`.
        pub select_policy: Option<String>,
        /// The policies.
        pub policies: Vec<HPAScalingPolicy>,
    }
}

k8s_struct! {
    /// `autoscalingv2.HPAScalingPolicy`.
    pub struct HPAScalingPolicy {
        /// `Pods` or `Percent`.
        #[serde(rename = "type")]
        pub type_: String,
        /// How many pods or percent.
        pub value: i32,
        /// Per how long (1 to 1800 s).
        pub period_seconds: i32,
    }
}

k8s_struct! {
    /// `autoscalingv2.HorizontalPodAutoscalerStatus`.
    pub struct HorizontalPodAutoscalerStatus {
        /// The generation observed.
        pub observed_generation: Option<i64>,
        /// When the replicas were last changed.
        pub last_scale_time: Option<String>,
        /// The target's replicas when last seen.
        pub current_replicas: Option<i32>,
        /// The replicas last asked for.
        pub desired_replicas: i32,
        /// The figures last seen, one per metric.
        pub current_metrics: Vec<MetricStatus>,
        /// `AbleToScale`, `ScalingActive`, `ScalingLimited`.
        pub conditions: Vec<Condition>,
    }
}

k8s_struct! {
    /// `autoscalingv2.MetricStatus`.
    pub struct MetricStatus {
        /// `Resource` or `ContainerResource`.
        #[serde(rename = "type")]
        pub type_: String,
        /// A pod resource's figures.
        pub resource: Option<ResourceMetricStatus>,
        /// A container resource's figures.
        pub container_resource: Option<ContainerResourceMetricStatus>,
    }
}

k8s_struct! {
    /// `autoscalingv2.ResourceMetricStatus`.
    pub struct ResourceMetricStatus {
        /// `cpu` or `memory`.
        pub name: String,
        /// The figures.
        pub current: MetricValueStatus,
    }
}

k8s_struct! {
    /// `autoscalingv2.ContainerResourceMetricStatus`.
    pub struct ContainerResourceMetricStatus {
        /// `cpu` or `memory`.
        pub name: String,
        /// The container.
        pub container: String,
        /// The figures.
        pub current: MetricValueStatus,
    }
}

k8s_struct! {
    /// `autoscalingv2.MetricValueStatus`.
    pub struct MetricValueStatus {
        /// Percent of the requests.
        pub average_utilization: Option<i32>,
        /// Per pod.
        pub average_value: Option<Quantity>,
    }
}

/// The kinds an autoscaler can scale.
pub const SCALABLE: [&str; 3] = ["Deployment", "ReplicaSet", "StatefulSet"];
const RESOURCES: [&str; 2] = ["cpu", "memory"];

impl MetricSpec {
    /// The resource, the container (for `ContainerResource`) and the target.
    pub fn source(&self) -> Option<(&str, Option<&str>, &MetricTarget)> {
        match self.type_.as_str() {
            "Resource" => self
                .resource
                .as_ref()
                .map(|r| (r.name.as_str(), None, &r.target)),
            "ContainerResource" => self
                .container_resource
                .as_ref()
                .map(|r| (r.name.as_str(), Some(r.container.as_str()), &r.target)),
            _ => None,
        }
    }
}

impl Resource for HorizontalPodAutoscaler {
    const NAME: NameRule = NameRule::Subdomain;

    fn default_fields(&mut self) {
        let s = &mut self.spec;
        s.min_replicas.get_or_insert(1);
        if s.metrics.is_empty() {
            s.metrics.push(MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(80),
                        ..Default::default()
                    },
                }),
                container_resource: None,
            });
        }
        if let Some(b) = &mut s.behavior {
            for (rules, up) in [(&mut b.scale_up, true), (&mut b.scale_down, false)] {
                let r = rules.get_or_insert_with(Default::default);
                r.stabilization_window_seconds
                    .get_or_insert(if up { 0 } else { 300 });
                r.select_policy.get_or_insert_with(|| "Max".into());
                if r.policies.is_empty() {
                    r.policies = default_policies(up);
                }
            }
        }
    }

    fn validate(&self, v: &mut Problems) {
        let s = &self.spec;
        let r = &s.scale_target_ref;
        if r.name.is_empty() {
            v.required("spec.scaleTargetRef.name");
        }
        if r.kind.is_empty() {
            v.required("spec.scaleTargetRef.kind");
        } else if !SCALABLE.contains(&r.kind.as_str()) {
            v.unsupported("spec.scaleTargetRef.kind", &r.kind, &SCALABLE);
        }
        let min = s.min_replicas.unwrap_or(1);
        if min < 1 {
            v.invalid(
                "spec.minReplicas",
                min,
                "must be greater than or equal to 1",
            );
        }
        if s.max_replicas < min {
            v.invalid(
                "spec.maxReplicas",
                s.max_replicas,
                "must be greater than or equal to `minReplicas`",
            );
        }
        for (i, m) in s.metrics.iter().enumerate() {
            validate_metric(v, &format!("spec.metrics[{i}]"), m);
        }
        if let Some(b) = &s.behavior {
            for (name, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
                if let Some(r) = rules {
                    validate_rules(v, &format!("spec.behavior.{name}"), r);
                }
            }
        }
    }

    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

fn validate_metric(v: &mut Problems, path: &str, m: &MetricSpec) {
    const TYPES: [&str; 2] = ["Resource", "ContainerResource"];
    if !TYPES.contains(&m.type_.as_str()) {
        let why = "skiff serves resource metrics only (no custom or external metrics API): supported values: \"Resource\", \"ContainerResource\"";
        return v.invalid(&format!("{path}.type"), format!("{:?}", m.type_), why);
    }
    let Some((name, container, t)) = m.source() else {
        let field = if m.type_ == "Resource" {
            "resource"
        } else {
            "containerResource"
        };
        return v.required(&format!("{path}.{field}"));
    };
    let field = if container.is_some() {
        "containerResource"
    } else {
        "resource"
    };
    if !RESOURCES.contains(&name) {
        v.unsupported(&format!("{path}.{field}.name"), name, &RESOURCES);
    }
    if container == Some("") {
        v.required(&format!("{path}.{field}.container"));
    }
    let tp = format!("{path}.{field}.target");
    match t.type_.as_str() {
        "Utilization" => match t.average_utilization {
            None => v.required(&format!("{tp}.averageUtilization")),
            Some(u) if u < 1 => v.invalid(
                &format!("{tp}.averageUtilization"),
                u,
                "must be greater than 0",
            ),
            _ => {}
        },
        "AverageValue" => match &t.average_value {
            None => v.required(&format!("{tp}.averageValue")),
            Some(q) if q.nanos() <= 0 => {
                v.invalid(&format!("{tp}.averageValue"), q, "must be positive")
            }
            _ => {}
        },
        other => v.unsupported(
            &format!("{tp}.type"),
            other,
            &["Utilization", "AverageValue"],
        ),
    }
}

fn validate_rules(v: &mut Problems, path: &str, r: &HPAScalingRules) {
    if let Some(w) = r.stabilization_window_seconds {
        if !(0..=3600).contains(&w) {
            v.invalid(
                &format!("{path}.stabilizationWindowSeconds"),
                w,
                "must be less than or equal to 3600 and greater than or equal to 0",
            );
        }
    }
    v.one_of(
        &format!("{path}.selectPolicy"),
        &r.select_policy,
        &["Max", "Min", "Disabled"],
    );
    for (i, p) in r.policies.iter().enumerate() {
        let pp = format!("{path}.policies[{i}]");
        if !["Pods", "Percent"].contains(&p.type_.as_str()) {
            v.unsupported(&format!("{pp}.type"), &p.type_, &["Pods", "Percent"]);
        }
        if p.value <= 0 {
            v.invalid(&format!("{pp}.value"), p.value, "must be greater than zero");
        }
        if !(1..=1800).contains(&p.period_seconds) {
            v.invalid(
                &format!("{pp}.periodSeconds"),
                p.period_seconds,
                "must be greater than zero and less than or equal to 1800",
            );
        }
    }
}

fn default_policies(up: bool) -> Vec<HPAScalingPolicy> {
    let p = |t: &str, value| HPAScalingPolicy {
        type_: t.into(),
        value,
        period_seconds: 15,
    };
    if up {
        vec![p("Pods", 4), p("Percent", 100)]
    } else {
        vec![p("Percent", 100)]
    }
}

/// An `autoscaling/v1` HorizontalPodAutoscaler as `autoscaling/v2` (what Kubernetes stores):
/// `targetCPUUtilizationPercentage` becomes a CPU `Utilization` metric; the status's
/// `currentCPUUtilizationPercentage` a current metric. Other fields are the same.
pub fn from_v1(mut v: Value) -> Value {
    v["apiVersion"] = json!("autoscaling/v2");
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(t) = spec.remove("targetCPUUtilizationPercentage") {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": t}}}]),
            );
        }
    }
    if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(c) = status.remove("currentCPUUtilizationPercentage") {
            status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": c}}}]),
            );
        }
    }
    v
}

impl HorizontalPodAutoscaler {
    /// kubectl's TARGETS column: each metric's current figure against its target.
    pub fn targets(&self) -> String {
        let current = self.status.as_ref().map(|s| &s.current_metrics);
        let cells: Vec<String> = self
            .spec
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let Some((name, container, t)) = m.source() else {
                    return "<unknown>".into();
                };
                let cur = current.and_then(|c| c.get(i)).and_then(|c| {
                    let v = c
                        .resource
                        .as_ref()
                        .map(|r| &r.current)
                        .or_else(|| c.container_resource.as_ref().map(|r| &r.current))?;
                    Some(v.clone())
                });
                let prefix = match container {
                    Some(c) => format!("{name}({c}): "),
                    None => format!("{name}: "),
                };
                match t.type_.as_str() {
                    "Utilization" => format!(
                        "{prefix}{}/{}%",
                        cur.and_then(|c| c.average_utilization)
                            .map_or("<unknown>".into(), |u| format!("{u}%")),
                        t.average_utilization.unwrap_or(0)
                    ),
                    _ => format!(
                        "{prefix}{}/{}",
                        cur.and_then(|c| c.average_value)
                            .map_or("<unknown>".into(), |q| q.to_string()),
                        t.average_value
                            .as_ref()
                            .map_or(String::new(), |q| q.to_string())
                    ),
                }
            })
            .collect();
        cells.join(", ")
    }
}

impl Print for HorizontalPodAutoscaler {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec![
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE",
        ]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let r = &self.spec.scale_target_ref;
        vec![
            self.metadata.name().to_string(),
            format!("{}/{}", r.kind, r.name),
            self.targets(),
            self.spec.min_replicas.unwrap_or(1).to_string(),
            self.spec.max_replicas.to_string(),
            self.status
                .as_ref()
                .and_then(|s| s.current_replicas)
                .unwrap_or(0)
                .to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        let r = &self.spec.scale_target_ref;
        page.field(0, "Reference", &format!("{}/{}", r.kind, r.name));
        page.field(
            0,
            "Metrics",
            &format!("( current / target ) {}", self.targets()),
        );
        page.field(
            0,
            "Min replicas",
            &self.spec.min_replicas.unwrap_or(1).to_string(),
        );
        page.field(0, "Max replicas", &self.spec.max_replicas.to_string());
        let st = self.status.clone().unwrap_or_default();
        page.field(
            0,
            &format!("{} pods", r.kind),
            &format!(
                "{} current / {} desired",
                st.current_replicas.unwrap_or(0),
                st.desired_replicas
            ),
        );
        if !st.conditions.is_empty() {
            page.line("Conditions:");
            let rows: Vec<Vec<String>> = st
                .conditions
                .iter()
                .map(|c| {
                    vec![
                        c.type_.clone(),
                        c.status.clone(),
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            page.table(&["Type", "Status", "Reason", "Message"], &rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;
    use crate::object::{Kind, Object};

    const PHP: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: php-apache
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: php-apache
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 50
";

    fn hpa(text: &str) -> HorizontalPodAutoscaler {
        let docs = parse_manifests(text).unwrap();
        match &docs[0].object {
            Object::HorizontalPodAutoscaler(h) => h.clone(),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn the_documentation_autoscaler_applies_and_prints() {
        let h = hpa(PHP);
        assert_eq!(Kind::from_name("hpa"), Some(Kind::HorizontalPodAutoscaler));
        assert_eq!(h.targets(), "cpu: <unknown>/50%");
        let row = h.row(false, 0);
        assert_eq!(row[1], "Deployment/php-apache");
        assert_eq!(&row[3..6], ["1", "10", "0"]);
    }

    #[test]
    fn defaults_are_kubernetes() {
        let mut h = hpa(&PHP.replace("  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 50\n", "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 5\n"));
        h.default_fields();
        assert_eq!(
            h.spec.metrics[0].source().unwrap().2.average_utilization,
            Some(80)
        );
        let b = h.spec.behavior.unwrap();
        let down = b.scale_down.unwrap();
        assert_eq!(down.stabilization_window_seconds, Some(5));
        assert_eq!(down.policies.len(), 1);
        let up = b.scale_up.unwrap();
        assert_eq!(up.stabilization_window_seconds, Some(0));
        assert_eq!(up.select_policy.as_deref(), Some("Max"));
        assert_eq!(up.policies.len(), 2);
    }

    #[test]
    fn bad_autoscalers_name_the_field() {
        let e = parse_manifests(&PHP.replace("type: Resource", "type: Pods")).unwrap_err();
        assert!(e.to_string().contains("spec.metrics[0].type"), "{e}");
        assert!(
            e.to_string().contains("no custom or external metrics"),
            "{e}"
        );
        let e = parse_manifests(&PHP.replace("maxReplicas: 10", "maxReplicas: 0")).unwrap_err();
        assert!(e.to_string().contains("spec.maxReplicas"), "{e}");
        let e = parse_manifests(&PHP.replace("kind: Deployment", "kind: DaemonSet")).unwrap_err();
        assert!(e.to_string().contains("spec.scaleTargetRef.kind"), "{e}");
        let e = parse_manifests(&PHP.replace("name: cpu", "name: gpu")).unwrap_err();
        assert!(
            e.to_string().contains("spec.metrics[0].resource.name"),
            "{e}"
        );
        let e =
            parse_manifests(&PHP.replace("averageUtilization: 50", "averageValue: 0")).unwrap_err();
        assert!(e.to_string().contains("averageUtilization"), "{e}");
    }

    #[test]
    fn v1_manifests_read_as_v2() {
        let v1 = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: web\n  minReplicas: 2\n  maxReplicas: 5\n  targetCPUUtilizationPercentage: 60\n";
        let h = hpa(v1);
        assert_eq!(h.api_version, "autoscaling/v2");
        assert_eq!(h.targets(), "cpu: <unknown>/60%");
        assert_eq!(h.spec.min_replicas, Some(2));
    }
}
