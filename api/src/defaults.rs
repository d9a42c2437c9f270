//! Defaults the server fills in, as Kubernetes' defaulting does.

use crate::core::{Endpoints, Namespace, Secret, Service};
use crate::object::Object;
use crate::pod::{Pod, PodSpec, Probe};
use crate::workloads::{
    CronJob, DaemonSet, Deployment, DeploymentStrategy, Job, ReplicaSet, RollingUpdate, StatefulSet,
};
use crate::IntOrString;
use base64::Engine;

/// Defaults of a Pod.
pub(crate) fn pod(p: &mut Pod) {
    pod_spec(&mut p.spec, "Always");
}

/// Defaults of a ReplicaSet.
pub(crate) fn replica_set(r: &mut ReplicaSet) {
    r.spec.replicas.get_or_insert(1);
    pod_spec(&mut r.spec.template.spec, "Always");
}

/// Defaults of a Deployment.
pub(crate) fn deployment(d: &mut Deployment) {
    let s = &mut d.spec;
    s.replicas.get_or_insert(1);
    s.revision_history_limit.get_or_insert(10);
    s.progress_deadline_seconds.get_or_insert(600);
    let st = s.strategy.get_or_insert_with(DeploymentStrategy::default);
    let t = st.type_.get_or_insert_with(|| "RollingUpdate".into());
    if t == "RollingUpdate" {
        let ru = st.rolling_update.get_or_insert_with(RollingUpdate::default);
        ru.max_surge
            .get_or_insert(IntOrString::String("25%".into()));
        ru.max_unavailable
            .get_or_insert(IntOrString::String("25%".into()));
    }
    pod_spec(&mut s.template.spec, "Always");
}

/// Defaults of a DaemonSet.
pub(crate) fn daemon_set(d: &mut DaemonSet) {
    d.spec.revision_history_limit.get_or_insert(10);
    let u = d.spec.update_strategy.get_or_insert_with(Default::default);
    let t = u.type_.get_or_insert_with(|| "RollingUpdate".into());
    if t == "RollingUpdate" {
        let ru = u.rolling_update.get_or_insert_with(RollingUpdate::default);
        ru.max_unavailable.get_or_insert(IntOrString::Int(1));
        ru.max_surge.get_or_insert(IntOrString::Int(0));
    }
    pod_spec(&mut d.spec.template.spec, "Always");
}

/// Defaults of a StatefulSet.
pub(crate) fn stateful_set(s: &mut StatefulSet) {
    s.spec.replicas.get_or_insert(1);
    s.spec.revision_history_limit.get_or_insert(10);
    s.spec
        .pod_management_policy
        .get_or_insert_with(|| "OrderedReady".into());
    let u = s.spec.update_strategy.get_or_insert_with(Default::default);
    let t = u.type_.get_or_insert_with(|| "RollingUpdate".into());
    if t == "RollingUpdate" {
        u.rolling_update
            .get_or_insert_with(Default::default)
            .partition
            .get_or_insert(0);
    }
    pod_spec(&mut s.spec.template.spec, "Always");
}

/// Defaults of a Job.
pub(crate) fn job(j: &mut Job) {
    let s = &mut j.spec;
    if s.completions.is_none() && s.parallelism.is_none() {
        s.completions = Some(1);
    }
    s.parallelism.get_or_insert(1);
    // With a limit per index, the Job-wide one is off unless set.
    let limit = match s.backoff_limit_per_index {
        Some(_) => i32::MAX,
        None => 6,
    };
    s.backoff_limit.get_or_insert(limit);
    s.completion_mode.get_or_insert_with(|| "NonIndexed".into());
    if let Some(p) = &mut s.pod_failure_policy {
        for c in p.rules.iter_mut().flat_map(|r| &mut r.on_pod_conditions) {
            c.status.get_or_insert_with(|| "True".into());
        }
    }
    s.suspend.get_or_insert(false);
    // Kubernetes selects a Job's pods by a label carrying the Job's uid.
    if s.manual_selector != Some(true) {
        if let Some(uid) = j.metadata.uid.clone() {
            let key = "batch.kubernetes.io/controller-uid";
            let sel = s.selector.get_or_insert_with(Default::default);
            sel.match_labels.insert(key.into(), uid.clone());
            s.template.metadata.labels.insert(key.into(), uid.clone());
            s.template.metadata.labels.insert(
                "batch.kubernetes.io/job-name".into(),
                j.metadata.name().to_string(),
            );
        }
    }
    let rp = s
        .template
        .spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Never".into());
    pod_spec(&mut s.template.spec, &rp);
}

/// Defaults of a CronJob (its Jobs get a Job's defaults when created).
pub(crate) fn cron_job(c: &mut CronJob) {
    let s = &mut c.spec;
    s.concurrency_policy.get_or_insert_with(|| "Allow".into());
    s.suspend.get_or_insert(false);
    s.successful_jobs_history_limit.get_or_insert(3);
    s.failed_jobs_history_limit.get_or_insert(1);
    let t = &mut s.job_template.spec.template.spec;
    let rp = t.restart_policy.clone().unwrap_or_else(|| "Never".into());
    pod_spec(t, &rp);
}

/// Defaults of a Service.
pub(crate) fn service(s: &mut Service) {
    s.spec.type_.get_or_insert_with(|| "ClusterIP".into());
    s.spec.session_affinity.get_or_insert_with(|| "None".into());
    for p in &mut s.spec.ports {
        p.protocol.get_or_insert_with(|| "TCP".into());
        if p.target_port.is_none() {
            p.target_port = p.port.map(IntOrString::Int);
        }
    }
}

/// Defaults of a Endpoints.
pub(crate) fn endpoints(e: &mut Endpoints) {
    for p in e.subsets.iter_mut().flat_map(|s| s.ports.iter_mut()) {
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
}

/// Defaults of a Secret.
pub(crate) fn secret(s: &mut Secret) {
    s.type_.get_or_insert_with(|| "Opaque".into());
    let b64 = base64::engine::general_purpose::STANDARD;
    for (k, v) in std::mem::take(&mut s.string_data) {
        s.data.insert(k, b64.encode(v.as_bytes()));
    }
}

/// Defaults of a Namespace.
pub(crate) fn namespace(n: &mut Namespace) {
    n.status
        .get_or_insert_with(Default::default)
        .phase
        .get_or_insert_with(|| "Active".into());
}

/// Fills in what Kubernetes defaults (each kind's [`crate::resource::Resource`]). Idempotent.
pub fn apply_defaults(obj: &mut Object) {
    obj.default_fields();
}

fn probe(p: &mut Option<Probe>) {
    if let Some(p) = p {
        p.period_seconds.get_or_insert(10);
        p.timeout_seconds.get_or_insert(1);
        p.success_threshold.get_or_insert(1);
        p.failure_threshold.get_or_insert(3);
        if let Some(h) = &mut p.http_get {
            h.path.get_or_insert_with(|| "/".into());
            h.scheme.get_or_insert_with(|| "HTTP".into());
        }
    }
}

fn pod_spec(s: &mut PodSpec, restart: &str) {
    s.restart_policy.get_or_insert_with(|| restart.to_string());
    s.termination_grace_period_seconds.get_or_insert(30);
    for c in s.containers.iter_mut().chain(s.init_containers.iter_mut()) {
        if c.image_pull_policy.is_none() {
            let image = c.image.as_deref().unwrap_or("");
            let last = image.rsplit('/').next().unwrap_or(image);
            let latest = !image.contains('@') && (!last.contains(':') || last.ends_with(":latest"));
            c.image_pull_policy = Some(if latest { "Always" } else { "IfNotPresent" }.into());
        }
        for p in &mut c.ports {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
        probe(&mut c.liveness_probe);
        probe(&mut c.readiness_probe);
        probe(&mut c.startup_probe);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;

    #[test]
    fn deployment_defaults_and_idempotence() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - {name: c, image: nginx}\n      - {name: d, image: 'reg:5000/nginx:1.2'}\n";
        let mut o = parse_manifests(text).unwrap().remove(0).object;
        apply_defaults(&mut o);
        let once = o.clone();
        apply_defaults(&mut o);
        assert_eq!(once, o);
        let Object::Deployment(d) = o else { panic!() };
        assert_eq!(d.spec.replicas, Some(1));
        let c = &d.spec.template.spec.containers;
        assert_eq!(c[0].image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(c[1].image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(
            d.spec.strategy.unwrap().rolling_update.unwrap().max_surge,
            Some(IntOrString::String("25%".into()))
        );
    }

    #[test]
    fn secret_string_data_folds_into_data() {
        let text =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n";
        let mut o = parse_manifests(text).unwrap().remove(0).object;
        apply_defaults(&mut o);
        let Object::Secret(s) = o else { panic!() };
        assert!(s.string_data.is_empty());
        assert_eq!(s.data["password"], "aHVudGVyMg==");
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
    }
}
