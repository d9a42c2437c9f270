//! ReplicaSets, Deployments, DaemonSets, StatefulSets and Jobs.

use super::pod::validate_pod_spec;
use super::*;
use crate::defaults;
use crate::resource::Resource;
use crate::workloads::{
    CronJob, DaemonSet, Deployment, Job, JobSpec, ReplicaSet, StatefulSet, CRONJOB_NAME_MAX,
};

pub(super) fn validate_template(v: &mut Problems, t: &PodTemplateSpec, restart: &[&str]) {
    validate_labels(v, "spec.template.metadata.labels", &t.metadata.labels);
    validate_pod_spec(v, "spec.template.spec", &t.spec, Some(restart));
}

pub(super) fn validate_replica_set(v: &mut Problems, r: &ReplicaSet) {
    v.non_negative("spec.replicas", r.spec.replicas);
    v.non_negative("spec.minReadySeconds", r.spec.min_ready_seconds);
    validate_workload_selector(v, &r.spec.selector, &r.spec.template);
    validate_template(v, &r.spec.template, &["Always"]);
}

pub(super) fn validate_deployment(v: &mut Problems, d: &Deployment) {
    let s = &d.spec;
    v.non_negative("spec.replicas", s.replicas);
    v.non_negative("spec.minReadySeconds", s.min_ready_seconds);
    v.non_negative("spec.revisionHistoryLimit", s.revision_history_limit);
    validate_workload_selector(v, &s.selector, &s.template);
    validate_template(v, &s.template, &["Always"]);
    if let (Some(p), Some(m)) = (s.progress_deadline_seconds, s.min_ready_seconds) {
        if p <= m {
            v.invalid(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than minReadySeconds",
            );
        }
    }
    v.positive("spec.progressDeadlineSeconds", s.progress_deadline_seconds);
    if let Some(st) = &s.strategy {
        v.one_of(
            "spec.strategy.type",
            &st.type_,
            &["Recreate", "RollingUpdate"],
        );
        if let Some(ru) = &st.rolling_update {
            if st.type_.as_deref() == Some("Recreate") {
                v.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
            let surge =
                validate_intstr_percent(v, "spec.strategy.rollingUpdate.maxSurge", &ru.max_surge);
            let unavail = validate_intstr_percent(
                v,
                "spec.strategy.rollingUpdate.maxUnavailable",
                &ru.max_unavailable,
            );
            if surge == Some(0) && unavail == Some(0) {
                v.invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    0,
                    "may not be 0 when `maxSurge` is 0",
                );
            }
        }
    }
}

pub(super) fn validate_daemon_set(v: &mut Problems, d: &DaemonSet) {
    validate_workload_selector(v, &d.spec.selector, &d.spec.template);
    validate_template(v, &d.spec.template, &["Always"]);
    v.non_negative("spec.minReadySeconds", d.spec.min_ready_seconds);
    if let Some(u) = &d.spec.update_strategy {
        v.one_of(
            "spec.updateStrategy.type",
            &u.type_,
            &["OnDelete", "RollingUpdate"],
        );
        if let Some(ru) = &u.rolling_update {
            validate_intstr_percent(
                v,
                "spec.updateStrategy.rollingUpdate.maxSurge",
                &ru.max_surge,
            );
            validate_intstr_percent(
                v,
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
                &ru.max_unavailable,
            );
        }
    }
}

pub(super) fn validate_stateful_set(v: &mut Problems, s: &StatefulSet) {
    v.non_negative("spec.replicas", s.spec.replicas);
    validate_workload_selector(v, &s.spec.selector, &s.spec.template);
    // The pods get a volume per claim template: mounts may name them.
    let mut template = s.spec.template.clone();
    crate::storage::add_claim_volumes(&mut template.spec, &s.spec.volume_claim_templates, "");
    validate_template(v, &template, &["Always"]);
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in s.spec.volume_claim_templates.iter().enumerate() {
        let p = format!("spec.volumeClaimTemplates[{i}]");
        let name = t.metadata.name();
        if name.is_empty() {
            v.required(&format!("{p}.metadata.name"));
        } else if let Some(why) = dns1123_label_problem(name) {
            v.invalid(&format!("{p}.metadata.name"), q(name), &why);
        } else if !seen.insert(name) {
            v.push(
                &format!("{p}.metadata.name"),
                format!("Duplicate value: {}", q(name)),
            );
        }
        let mut inner = Problems::default();
        crate::resource::Resource::validate(t, &mut inner);
        v.nest(inner, "spec", &format!("{p}.spec"));
    }
    if let Some(r) = &s.spec.persistent_volume_claim_retention_policy {
        let p = "spec.persistentVolumeClaimRetentionPolicy";
        v.one_of(
            &format!("{p}.whenDeleted"),
            &r.when_deleted,
            &["Delete", "Retain"],
        );
        v.one_of(
            &format!("{p}.whenScaled"),
            &r.when_scaled,
            &["Delete", "Retain"],
        );
    }
    v.one_of(
        "spec.podManagementPolicy",
        &s.spec.pod_management_policy,
        &["OrderedReady", "Parallel"],
    );
    if let Some(u) = &s.spec.update_strategy {
        v.one_of(
            "spec.updateStrategy.type",
            &u.type_,
            &["OnDelete", "RollingUpdate"],
        );
        if let Some(ru) = &u.rolling_update {
            v.non_negative("spec.updateStrategy.rollingUpdate.partition", ru.partition);
        }
    }
    if let Some(n) = &s.spec.service_name {
        if let Some(why) = dns1123_label_problem(n) {
            v.invalid("spec.serviceName", q(n), &why);
        }
    }
}

pub(super) fn validate_job(v: &mut Problems, j: &Job) {
    let s = &j.spec;
    v.non_negative("spec.completions", s.completions);
    v.non_negative("spec.parallelism", s.parallelism);
    v.non_negative("spec.backoffLimit", s.backoff_limit);
    v.positive("spec.activeDeadlineSeconds", s.active_deadline_seconds);
    v.non_negative("spec.ttlSecondsAfterFinished", s.ttl_seconds_after_finished);
    if s.manual_selector == Some(true) {
        validate_workload_selector(v, &s.selector, &s.template);
    } else if let Some(sel) = &s.selector {
        validate_selector(v, "spec.selector", sel);
    }
    match s.template.spec.restart_policy.as_deref() {
        Some("OnFailure") | Some("Never") => {}
        None => v.required("spec.template.spec.restartPolicy"),
        Some(other) => v.unsupported(
            "spec.template.spec.restartPolicy",
            other,
            &["OnFailure", "Never"],
        ),
    }
    validate_labels(
        v,
        "spec.template.metadata.labels",
        &s.template.metadata.labels,
    );
    validate_pod_spec(
        v,
        "spec.template.spec",
        &s.template.spec,
        Some(&["OnFailure", "Never"]),
    );
}

pub(super) fn validate_cron_job(v: &mut Problems, c: &CronJob) {
    let name = c.metadata.name();
    if name.len() > CRONJOB_NAME_MAX {
        v.invalid(
            "metadata.name",
            q(name),
            &format!("must be no more than {CRONJOB_NAME_MAX} characters"),
        );
    }
    let s = &c.spec;
    if s.schedule.trim().is_empty() {
        v.required("spec.schedule");
    } else if let Err(e) = crate::cron::Schedule::parse(&s.schedule) {
        v.invalid("spec.schedule", q(&s.schedule), &e.0);
    }
    if let Some(tz) = &s.time_zone {
        if let Err(e) = crate::cron::check_time_zone(tz) {
            v.invalid("spec.timeZone", q(tz), &e);
        }
    }
    v.non_negative("spec.startingDeadlineSeconds", s.starting_deadline_seconds);
    v.one_of(
        "spec.concurrencyPolicy",
        &s.concurrency_policy,
        &["Allow", "Forbid", "Replace"],
    );
    v.non_negative(
        "spec.successfulJobsHistoryLimit",
        s.successful_jobs_history_limit,
    );
    v.non_negative("spec.failedJobsHistoryLimit", s.failed_jobs_history_limit);
    let t = &s.job_template;
    if t.spec.manual_selector == Some(true) {
        v.unsupported(
            "spec.jobTemplate.spec.manualSelector",
            "true",
            &["nil", "false"],
        );
    }
    validate_labels(v, "spec.jobTemplate.metadata.labels", &t.metadata.labels);
    // The template is a Job's spec: validated as one, its paths under the template.
    let job = Job {
        spec: JobSpec {
            manual_selector: None,
            ..t.spec.clone()
        },
        ..Default::default()
    };
    let mut inner = Problems::default();
    validate_job(&mut inner, &job);
    v.nest(inner, "spec.", "spec.jobTemplate.spec.");
}

impl Resource for CronJob {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::cron_job(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_cron_job(v, self)
    }
    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Resource for ReplicaSet {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::replica_set(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_replica_set(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if old.spec.selector != self.spec.selector {
            v.invalid("spec.selector", "...", IMMUTABLE)
        }
    }
}

impl Resource for Deployment {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::deployment(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_deployment(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if old.spec.selector != self.spec.selector {
            v.invalid("spec.selector", "...", IMMUTABLE)
        }
    }
}

impl Resource for DaemonSet {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::daemon_set(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_daemon_set(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if old.spec.selector != self.spec.selector {
            v.invalid("spec.selector", "...", IMMUTABLE)
        }
    }
}

impl Resource for StatefulSet {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::stateful_set(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_stateful_set(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if old.spec.selector != self.spec.selector {
            v.invalid("spec.selector", "...", IMMUTABLE)
        }
        if old.spec.service_name != self.spec.service_name
            || old.spec.volume_claim_templates != self.spec.volume_claim_templates
        {
            v.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
        }
    }
}

impl Resource for Job {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {
        defaults::job(self)
    }
    fn validate(&self, v: &mut Problems) {
        validate_job(v, self)
    }
    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if old.spec.template != self.spec.template {
            v.invalid("spec.template", "...", IMMUTABLE)
        }
    }
}
