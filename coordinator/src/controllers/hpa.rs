//! The HorizontalPodAutoscaler controller (Kubernetes' `podautoscaler`): each sync period,
//! every autoscaler reads its target's replicas and pods and the pods' figures, asks
//! [`hpa_calc`] for a replica count per metric, keeps the highest, stabilizes and limits
//! it, sets the target's replicas (what its `scale` subresource sets), writes its status
//! and conditions, and records Kubernetes' events. Pure: the figures and the history are
//! arguments.

use super::hpa_calc::{
    self, History, PodSample, Policy, PolicyKind, Rules, Select, Target as CalcTarget,
};
use super::Action;
use skiff_api::autoscaling::{
    ContainerResourceMetricStatus, HPAScalingRules, HorizontalPodAutoscaler, MetricStatus,
    MetricValueStatus, ResourceMetricStatus,
};
use skiff_api::conditions::{phase, ready_condition, set_condition};
use skiff_api::pod::Pod;
use skiff_api::selector::LabelSelector;
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::wire::PodUsage;
use skiff_api::workloads::{Deployment, ReplicaSet, StatefulSet};
use skiff_api::{Object, Quantity};

/// A pod's last figures: the report's entry, when it was measured and over what window
/// (seconds).
pub type Figures<'a> = (&'a PodUsage, u64, u64);

/// The scaled object's replicas and selector, if it is a kind that scales.
pub fn scale_of(target: &Object) -> Option<(i32, Option<&LabelSelector>)> {
    match target {
        Object::Deployment(Deployment { spec, .. }) => {
            Some((spec.replicas.unwrap_or(1), spec.selector.as_ref()))
        }
        Object::ReplicaSet(ReplicaSet { spec, .. }) => {
            Some((spec.replicas.unwrap_or(1), spec.selector.as_ref()))
        }
        Object::StatefulSet(StatefulSet { spec, .. }) => {
            Some((spec.replicas.unwrap_or(1), spec.selector.as_ref()))
        }
        _ => None,
    }
}

fn with_replicas(target: &Object, n: i32) -> Object {
    let mut t = target.clone();
    match &mut t {
        Object::Deployment(d) => d.spec.replicas = Some(n),
        Object::ReplicaSet(r) => r.spec.replicas = Some(n),
        Object::StatefulSet(s) => s.spec.replicas = Some(n),
        _ => {}
    }
    t
}

/// The rules of one direction, Kubernetes' defaults where the autoscaler sets none.
fn rules(r: Option<&HPAScalingRules>, up: bool) -> Rules {
    let d = if up {
        Rules::default_up()
    } else {
        Rules::default_down()
    };
    let Some(r) = r else { return d };
    Rules {
        window: r
            .stabilization_window_seconds
            .map_or(d.window, |w| w.max(0) as u64),
        select: match r.select_policy.as_deref() {
            Some("Min") => Select::Min,
            Some("Disabled") => Select::Disabled,
            _ => Select::Max,
        },
        policies: if r.policies.is_empty() {
            d.policies
        } else {
            r.policies
                .iter()
                .map(|p| Policy {
                    kind: if p.type_ == "Pods" {
                        PolicyKind::Pods
                    } else {
                        PolicyKind::Percent
                    },
                    value: p.value,
                    period: p.period_seconds.max(1) as u64,
                })
                .collect()
        },
    }
}

/// The longest policy period of the autoscaler's rules: how long scale events matter.
fn longest_period(up: &Rules, down: &Rules) -> u64 {
    up.policies
        .iter()
        .chain(&down.policies)
        .map(|p| p.period)
        .max()
        .unwrap_or(15)
}

/// One pod as the calculator sees it, for a resource (of one container, or the pod's).
fn sample(p: &Pod, resource: &str, container: Option<&str>, f: Option<Figures>) -> PodSample {
    let ph = phase(p);
    let status = p.status.as_ref();
    let request = || -> Result<u64, String> {
        let mut total = 0u64;
        let mut any = false;
        for c in &p.spec.containers {
            if container.is_some_and(|want| want != c.name) {
                continue;
            }
            any = true;
            let q = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.get(resource))
                .ok_or_else(|| {
                    format!(
                        "missing request for {resource} in container {} of Pod {}",
                        c.name,
                        p.metadata.name()
                    )
                })?;
            total += amount(resource, q);
        }
        if !any {
            return Err(format!(
                "container {} not found in Pod {}",
                container.unwrap_or(""),
                p.metadata.name()
            ));
        }
        Ok(total)
    };
    let usage = f.and_then(|(u, at, window)| {
        let figures = match container {
            Some(c) => u.containers.iter().find(|x| x.name == c)?.usage,
            None => u.usage,
        };
        let v = if resource == "cpu" {
            figures.cpu_millis
        } else {
            figures.memory_bytes
        };
        Some((v, at, window))
    });
    PodSample {
        name: p.metadata.name().to_string(),
        ignored: p.metadata.deletion_timestamp.is_some() || matches!(ph, "Failed" | "Succeeded"),
        pending: ph == "Pending",
        ready: ready_condition(p).map(|c| {
            (
                c.status == "True",
                c.last_transition_time
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .unwrap_or(0),
            )
        }),
        started: status
            .and_then(|s| s.start_time.as_deref())
            .and_then(parse_rfc3339),
        request: request(),
        usage,
    }
}

/// A quantity in the calculator's units: millicores for CPU, bytes otherwise.
fn amount(resource: &str, q: &Quantity) -> u64 {
    if resource == "cpu" {
        q.millis().max(0) as u64
    } else {
        q.value().max(0) as u64
    }
}

fn quantity(resource: &str, v: u64) -> Quantity {
    let text = if resource == "cpu" {
        format!("{v}m")
    } else {
        v.to_string()
    };
    Quantity::parse(&text).expect("a number is a quantity")
}

/// Every metric's proposal, the highest, and what the status reports; an error when no
/// metric could be computed, or when one failed and the others would scale down.
fn compute<'a>(
    h: &HorizontalPodAutoscaler,
    current: i32,
    pods: &[&Pod],
    figures: &dyn Fn(&Pod) -> Option<Figures<'a>>,
    now: u64,
) -> Result<(i32, String, Vec<MetricStatus>), String> {
    let mut best: Option<(i32, String)> = None;
    let (mut statuses, mut errors) = (Vec::new(), Vec::new());
    for m in &h.spec.metrics {
        let Some((resource, container, t)) = m.source() else {
            errors.push(format!("metric type {:?} is not served", m.type_));
            continue;
        };
        let target = match t.type_.as_str() {
            "Utilization" => CalcTarget::Utilization(t.average_utilization.unwrap_or(80) as i64),
            _ => CalcTarget::AverageValue(
                t.average_value.as_ref().map_or(0, |q| amount(resource, q)),
            ),
        };
        let samples: Vec<PodSample> = pods
            .iter()
            .map(|p| sample(p, resource, container, figures(p)))
            .collect();
        match hpa_calc::replicas_for(current, target, &samples, resource == "cpu", now) {
            Ok(p) => {
                let name = match target {
                    CalcTarget::Utilization(_) => {
                        format!("{resource} resource utilization (percentage of request)")
                    }
                    CalcTarget::AverageValue(_) => format!("{resource} resource"),
                };
                let name = match container {
                    Some(c) => format!("{name} of container {c}"),
                    None => name,
                };
                if best.as_ref().is_none_or(|(r, _)| p.replicas > *r) {
                    best = Some((p.replicas, name));
                }
                let current = MetricValueStatus {
                    average_utilization: p.utilization.map(|u| u as i32),
                    average_value: Some(quantity(resource, p.average)),
                };
                statuses.push(match container {
                    Some(c) => MetricStatus {
                        type_: "ContainerResource".into(),
                        container_resource: Some(ContainerResourceMetricStatus {
                            name: resource.into(),
                            container: c.into(),
                            current,
                        }),
                        ..Default::default()
                    },
                    None => MetricStatus {
                        type_: "Resource".into(),
                        resource: Some(ResourceMetricStatus {
                            name: resource.into(),
                            current,
                        }),
                        ..Default::default()
                    },
                });
            }
            Err(e) => errors.push(format!(
                "failed to get {resource} utilization: unable to get metrics for resource {resource}: {e}"
            )),
        }
    }
    match best {
        Some((r, name)) if errors.is_empty() || r >= current => Ok((r, name, statuses)),
        _ => Err(format!(
            "invalid metrics ({} invalid out of {}), first error is: {}",
            errors.len(),
            h.spec.metrics.len(),
            errors.first().map_or("", String::as_str)
        )),
    }
}

/// A metric-driven proposal stabilized and limited by the behavior, with the conditions
/// that say how; the history records it (and the change, if any).
fn stabilized(
    h: &HorizontalPodAutoscaler,
    current: i32,
    proposed: i32,
    metric: &str,
    hist: &mut History,
    conditions: &mut Vec<skiff_api::meta::Condition>,
    now: u64,
) -> i32 {
    let (min, max) = (h.spec.min_replicas.unwrap_or(1), h.spec.max_replicas);
    set_condition(
        conditions,
        "ScalingActive",
        "True",
        "ValidMetricFound",
        &format!("the HPA was able to successfully calculate a replica count from {metric}"),
        now,
    );
    let behavior = h.spec.behavior.as_ref();
    let up = rules(behavior.and_then(|b| b.scale_up.as_ref()), true);
    let down = rules(behavior.and_then(|b| b.scale_down.as_ref()), false);
    let n = hpa_calc::normalize(current, proposed, (min, max), (&up, &down), hist, now);
    set_condition(conditions, "AbleToScale", "True", n.able.0, n.able.1, now);
    let limited = if n.limited.0 { "True" } else { "False" };
    set_condition(
        conditions,
        "ScalingLimited",
        limited,
        n.limited.1,
        n.limited.2,
        now,
    );
    if n.replicas != current {
        let period = longest_period(&up, &down);
        hpa_calc::record_scale(hist, current, n.replicas, period, now);
    }
    n.replicas
}

/// One sync of one autoscaler: the target's new replicas (if they change), the
/// autoscaler's status (if it changes), and events.
pub fn reconcile<'a>(
    h: &HorizontalPodAutoscaler,
    target: Option<&Object>,
    pods: &[&Pod],
    figures: &dyn Fn(&Pod) -> Option<Figures<'a>>,
    hist: &mut History,
    now: u64,
) -> Vec<Action> {
    let mut out = Vec::new();
    let mut st = h.status.clone().unwrap_or_default();
    st.observed_generation = h.metadata.generation;
    let event = |out: &mut Vec<Action>, warning: bool, reason: &str, message: String| {
        out.push(Action::Event {
            about: Object::HorizontalPodAutoscaler(h.clone()).key(),
            uid: h.metadata.uid.clone().unwrap_or_default(),
            warning,
            reason: reason.into(),
            message,
        });
    };
    let r = &h.spec.scale_target_ref;
    let Some((current, target)) = target.and_then(|t| Some((scale_of(t)?.0, t))) else {
        let msg = format!(
            "the HPA controller was unable to get the target's current scale: {} {:?} not found",
            r.kind.to_ascii_lowercase(),
            r.name
        );
        if set_condition(
            &mut st.conditions,
            "AbleToScale",
            "False",
            "FailedGetScale",
            &msg,
            now,
        ) {
            event(&mut out, true, "FailedGetScale", msg);
        }
        return finish(h, st, out);
    };
    st.current_replicas = Some(current);
    let (min, max) = (h.spec.min_replicas.unwrap_or(1), h.spec.max_replicas);
    let (desired, reason) = if current == 0 && min != 0 {
        set_condition(
            &mut st.conditions,
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
            now,
        );
        (0, None)
    } else if current > max {
        (
            max,
            Some("Current number of replicas above Spec.MaxReplicas".to_string()),
        )
    } else if current < min {
        (
            min,
            Some("Current number of replicas below Spec.MinReplicas".to_string()),
        )
    } else {
        match compute(h, current, pods, figures, now) {
            Err(e) => {
                let msg = format!("the HPA was unable to compute the replica count: {e}");
                set_condition(
                    &mut st.conditions,
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    &msg,
                    now,
                );
                event(&mut out, true, "FailedGetResourceMetric", e.clone());
                event(&mut out, true, "FailedComputeMetricsReplicas", msg);
                return finish(h, st, out);
            }
            Ok((proposed, metric, statuses)) => {
                st.current_metrics = statuses;
                let n = stabilized(h, current, proposed, &metric, hist, &mut st.conditions, now);
                let why = if n > current {
                    format!("{metric} above target")
                } else {
                    "All metrics below target".to_string()
                };
                (n, Some(why))
            }
        }
    };
    st.desired_replicas = desired;
    if let (Some(why), true) = (reason, desired != current && !(current == 0 && min != 0)) {
        out.push(Action::Update(with_replicas(target, desired)));
        st.last_scale_time = Some(rfc3339(now));
        set_condition(
            &mut st.conditions,
            "AbleToScale",
            "True",
            "SucceededRescale",
            &format!("the HPA controller was able to update the target scale to {desired}"),
            now,
        );
        event(
            &mut out,
            false,
            "SuccessfulRescale",
            format!("New size: {desired}; reason: {why}"),
        );
    }
    finish(h, st, out)
}

/// Adds the status write when the status changed.
fn finish(
    h: &HorizontalPodAutoscaler,
    st: skiff_api::autoscaling::HorizontalPodAutoscalerStatus,
    mut out: Vec<Action>,
) -> Vec<Action> {
    if h.status.as_ref() != Some(&st) {
        let mut next = h.clone();
        next.status = Some(st);
        out.push(Action::Status(Object::HorizontalPodAutoscaler(next)));
    }
    out
}

/// What the controller remembers per autoscaler (by uid): its last sync and its history.
pub type Autoscalers = crate::HashMap<String, (u64, History)>;

/// Syncs every autoscaler whose period is due: finds its target and the target's pods in
/// the cache and the pods' figures in the nodes' fresh reports. Forgets autoscalers that
/// are gone.
pub fn pass(
    cache: &super::Cache,
    reports: &[skiff_api::wire::NodeUsageReport],
    state: &mut Autoscalers,
    sync_secs: u64,
    now: u64,
) -> Vec<Action> {
    use skiff_api::{Kind, ObjectKey};
    let mut out = Vec::new();
    let live: Vec<String> = cache
        .typed::<HorizontalPodAutoscaler>()
        .filter_map(|h| h.metadata.uid.clone())
        .collect();
    state.retain(|uid, _| live.contains(uid));
    if live.is_empty() {
        return out;
    }
    let figures = |p: &Pod| -> Option<Figures> {
        reports.iter().find_map(|r| {
            let u = r
                .pods
                .iter()
                .find(|u| u.namespace == p.metadata.namespace() && u.name == p.metadata.name())?;
            crate::nodes::fresh(r, now).then_some((u, r.at, (r.window_ms / 1000).max(1)))
        })
    };
    for h in cache.typed::<HorizontalPodAutoscaler>() {
        let Some(uid) = h.metadata.uid.clone() else {
            continue;
        };
        let (last, hist) = state.entry(uid).or_default();
        if *last != 0 && *last + sync_secs > now || h.metadata.deletion_timestamp.is_some() {
            continue;
        }
        *last = now;
        let r = &h.spec.scale_target_ref;
        let kind = match r.kind.as_str() {
            "Deployment" => Kind::Deployment,
            "ReplicaSet" => Kind::ReplicaSet,
            _ => Kind::StatefulSet,
        };
        let key = ObjectKey {
            kind,
            namespace: h.metadata.namespace().to_string(),
            name: r.name.clone(),
        };
        let target = cache.get(&key).map(|e| &*e.object);
        let selector = target.and_then(scale_of).and_then(|(_, s)| s.cloned());
        let pods: Vec<&Pod> = match &selector {
            Some(sel) => cache
                .typed::<Pod>()
                .filter(|p| {
                    p.metadata.namespace() == h.metadata.namespace()
                        && sel.matches(&p.metadata.labels)
                })
                .collect(),
            None => Vec::new(),
        };
        out.extend(reconcile(h, target, &pods, &figures, hist, now));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::manifest::parse_manifests;
    use skiff_api::wire::{ContainerUsage, Usage};

    const NOW: u64 = 1_800_000_000;

    fn object(yaml: &str) -> Object {
        let mut o = parse_manifests(yaml).unwrap().remove(0).object;
        o.meta_mut().uid = Some("u1".into());
        o.meta_mut().namespace = Some("default".into());
        o
    }

    fn autoscaler() -> HorizontalPodAutoscaler {
        let Object::HorizontalPodAutoscaler(mut h) = object(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  maxReplicas: 10\n  metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}\n",
        ) else {
            unreachable!()
        };
        skiff_api::resource::Resource::default_fields(&mut h);
        h
    }

    fn deployment(replicas: i32) -> Object {
        object(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: c, image: x, resources: {{requests: {{cpu: 100m}}}}}}]\n"
        ))
    }

    fn pod(name: &str) -> Pod {
        let t = rfc3339(NOW - 3600);
        let Object::Pod(p) = object(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: web}}}}\nspec:\n  containers: [{{name: c, image: x, resources: {{requests: {{cpu: 100m}}}}}}]\nstatus:\n  phase: Running\n  startTime: '{t}'\n  conditions: [{{type: Ready, status: 'True', lastTransitionTime: '{t}'}}]\n"
        )) else {
            unreachable!()
        };
        p
    }

    fn usage(name: &str, millis: u64) -> PodUsage {
        let u = Usage {
            cpu_millis: millis,
            memory_bytes: 1 << 20,
        };
        PodUsage {
            namespace: "default".into(),
            name: name.into(),
            usage: u,
            containers: vec![ContainerUsage {
                name: "c".into(),
                usage: u,
            }],
        }
    }

    #[test]
    fn scales_out_within_the_policies_and_says_why() {
        let h = autoscaler();
        let d = deployment(2);
        let pods = [pod("a"), pod("b")];
        let refs: Vec<&Pod> = pods.iter().collect();
        let figures = [usage("a", 200), usage("b", 200)];
        let f = |p: &Pod| {
            let u = figures.iter().find(|u| u.name == p.metadata.name())?;
            Some((u, NOW - 5, 15))
        };
        let mut hist = History::default();
        let out = reconcile(&h, Some(&d), &refs, &f, &mut hist, NOW);
        // 200 % of the request against 50 %: 8 wanted, 2 + 4 allowed in one period.
        let Some(Action::Update(Object::Deployment(scaled))) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(scaled.spec.replicas, Some(6));
        let Some(Action::Status(Object::HorizontalPodAutoscaler(s))) = out.last() else {
            panic!("{out:?}")
        };
        let st = s.status.as_ref().unwrap();
        assert_eq!((st.current_replicas, st.desired_replicas), (Some(2), 6));
        assert_eq!(
            st.current_metrics[0]
                .resource
                .as_ref()
                .unwrap()
                .current
                .average_utilization,
            Some(200)
        );
        assert_eq!(s.targets(), "cpu: 200%/50%");
        let limited = st
            .conditions
            .iter()
            .find(|c| c.type_ == "ScalingLimited")
            .unwrap();
        assert_eq!(
            (limited.status.as_str(), limited.reason.as_deref()),
            ("True", Some("ScaleUpLimit"))
        );
        assert!(out.iter().any(|a| matches!(a, Action::Event { reason, message, .. }
            if reason == "SuccessfulRescale"
                && message == "New size: 6; reason: cpu resource utilization (percentage of request) above target")));
        assert_eq!(hist.ups.len(), 1);
    }

    #[test]
    fn a_missing_target_or_missing_figures_are_reported_once() {
        let h = autoscaler();
        let mut hist = History::default();
        let none = |_: &Pod| None;
        let out = reconcile(&h, None, &[], &none, &mut hist, NOW);
        let Some(Action::Status(Object::HorizontalPodAutoscaler(s))) = out.last() else {
            panic!("{out:?}")
        };
        let c = &s.status.as_ref().unwrap().conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.reason.as_deref()),
            ("AbleToScale", Some("FailedGetScale"))
        );
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Event { warning: true, .. })));
        // The same state again writes nothing.
        assert!(reconcile(s, None, &[], &none, &mut hist, NOW + 15).is_empty());
        // A target whose pods have no figures yet: ScalingActive=False, no rescale.
        let d = deployment(2);
        let pods = [pod("a")];
        let refs: Vec<&Pod> = pods.iter().collect();
        let out = reconcile(&h, Some(&d), &refs, &none, &mut hist, NOW);
        assert!(
            !out.iter().any(|a| matches!(a, Action::Update(_))),
            "{out:?}"
        );
        let Some(Action::Status(Object::HorizontalPodAutoscaler(s))) = out.last() else {
            panic!("{out:?}")
        };
        let active = s
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == "ScalingActive")
            .unwrap();
        assert_eq!(active.reason.as_deref(), Some("FailedGetResourceMetric"));
        assert!(
            active
                .message
                .as_deref()
                .unwrap()
                .contains("did not receive metrics"),
            "{active:?}"
        );
    }

    #[test]
    fn replicas_outside_the_bounds_are_brought_in() {
        let h = autoscaler();
        let d = deployment(12);
        let none = |_: &Pod| None;
        let out = reconcile(&h, Some(&d), &[], &none, &mut History::default(), NOW);
        let Some(Action::Update(Object::Deployment(scaled))) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(scaled.spec.replicas, Some(10));
        assert!(out.iter().any(|a| matches!(a, Action::Event { message, .. }
            if message == "New size: 10; reason: Current number of replicas above Spec.MaxReplicas")));
        // A target scaled to zero by hand: autoscaling is off, nothing written to it.
        let out = reconcile(
            &h,
            Some(&deployment(0)),
            &[],
            &none,
            &mut History::default(),
            NOW,
        );
        assert!(
            !out.iter().any(|a| matches!(a, Action::Update(_))),
            "{out:?}"
        );
    }
}
