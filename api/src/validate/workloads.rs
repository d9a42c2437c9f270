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
    validate_job_indexes(v, s);
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

/// Indexed completion, per-index back-off, and the pod failure and success policies, as
/// Kubernetes validates them.
fn validate_job_indexes(v: &mut Problems, s: &JobSpec) {
    v.one_of(
        "spec.completionMode",
        &s.completion_mode,
        &["NonIndexed", "Indexed"],
    );
    let indexed = s.completion_mode.as_deref() == Some("Indexed");
    if indexed && s.completions.is_none() {
        v.push(
            "spec.completions",
            "Required value: when completion mode is Indexed".into(),
        );
    }
    v.non_negative("spec.backoffLimitPerIndex", s.backoff_limit_per_index);
    v.non_negative("spec.maxFailedIndexes", s.max_failed_indexes);
    if s.backoff_limit_per_index.is_some() && !indexed {
        v.forbidden(
            "spec.backoffLimitPerIndex",
            "requires indexed completion mode",
        );
    }
    if let Some(m) = s.max_failed_indexes {
        if s.backoff_limit_per_index.is_none() {
            v.push(
                "spec.backoffLimitPerIndex",
                "Required value: when maxFailedIndexes is specified".into(),
            );
        }
        if s.completions.is_some_and(|c| m > c) {
            v.invalid(
                "spec.maxFailedIndexes",
                m,
                "must be less than or equal to completions",
            );
        }
    }
    if let Some(p) = &s.pod_failure_policy {
        validate_pod_failure_policy(v, s, p);
    }
    if let Some(p) = &s.success_policy {
        validate_success_policy(v, s, p, indexed);
    }
}

/// A Job's `podFailurePolicy`: Never pods, known actions, one kind of requirement each.
fn validate_pod_failure_policy(
    v: &mut Problems,
    s: &JobSpec,
    p: &crate::workloads::PodFailurePolicy,
) {
    if s.template.spec.restart_policy.as_deref() != Some("Never") {
        v.invalid(
            "spec.template.spec.restartPolicy",
            q(s.template.spec.restart_policy.as_deref().unwrap_or("")),
            "only \"Never\" is supported when podFailurePolicy is specified",
        );
    }
    for (i, r) in p.rules.iter().enumerate() {
        let rp = format!("spec.podFailurePolicy.rules[{i}]");
        let actions = ["Count", "FailIndex", "FailJob", "Ignore"];
        if !actions.contains(&r.action.as_str()) {
            v.unsupported(&format!("{rp}.action"), &r.action, &actions);
        }
        if r.action == "FailIndex" && s.backoff_limit_per_index.is_none() {
            v.forbidden(
                &format!("{rp}.action"),
                "requires the backoffLimitPerIndex to be set",
            );
        }
        match (&r.on_exit_codes, r.on_pod_conditions.is_empty()) {
            (Some(_), false) => v.invalid(
                &rp,
                "",
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ),
            (None, true) => v.invalid(
                &rp,
                "",
                "specifying one of OnExitCodes and OnPodConditions is required",
            ),
            _ => {}
        }
        if let Some(e) = &r.on_exit_codes {
            let ep = format!("{rp}.onExitCodes");
            if !["In", "NotIn"].contains(&e.operator.as_str()) {
                v.unsupported(&format!("{ep}.operator"), &e.operator, &["In", "NotIn"]);
            }
            if e.values.is_empty() {
                v.push(
                    &format!("{ep}.values"),
                    "Invalid value: \"[]\": at least one value is required".into(),
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            for (j, x) in e.values.iter().enumerate() {
                let xp = format!("{ep}.values[{j}]");
                if !seen.insert(*x) {
                    v.push(&xp, format!("Duplicate value: {x}"));
                }
                if *x == 0 && e.operator == "In" {
                    v.invalid(&xp, x, "must not be 0 for the In operator");
                }
            }
        }
        for (j, c) in r.on_pod_conditions.iter().enumerate() {
            let cp = format!("{rp}.onPodConditions[{j}]");
            if c.type_.is_empty() {
                v.required(&format!("{cp}.type"));
            }
            v.one_of(
                &format!("{cp}.status"),
                &c.status,
                &["True", "False", "Unknown"],
            );
        }
    }
}

/// A Job's `successPolicy`: Indexed Jobs only, rules within the completions.
fn validate_success_policy(
    v: &mut Problems,
    s: &JobSpec,
    p: &crate::workloads::SuccessPolicy,
    indexed: bool,
) {
    if !indexed {
        v.invalid("spec.successPolicy", "", "requires indexed completion mode");
    }
    if p.rules.is_empty() {
        v.required("spec.successPolicy.rules");
    }
    let completions = s.completions.unwrap_or(0);
    for (i, r) in p.rules.iter().enumerate() {
        let rp = format!("spec.successPolicy.rules[{i}]");
        if r.succeeded_indexes.is_none() && r.succeeded_count.is_none() {
            v.required(&format!(
                "{rp}: at least one of succeededCount or succeededIndexes must be specified"
            ));
        }
        let mut n_indexes = None;
        if let Some(ix) = &r.succeeded_indexes {
            match crate::workloads::parse_indexes(ix, completions) {
                Ok(set) => n_indexes = Some(set.len() as i32),
                Err(why) => v.invalid(&format!("{rp}.succeededIndexes"), q(ix), &why),
            }
        }
        if let Some(c) = r.succeeded_count {
            let cp = format!("{rp}.succeededCount");
            if c < 0 {
                v.invalid(&cp, c, "must be greater than or equal to 0");
            } else if c > completions {
                v.invalid(&cp, c, &format!("must be less than or equal to {completions} (the number of specified completions)"));
            } else if n_indexes.is_some_and(|n| c > n) {
                v.invalid(&cp, c, &format!("must be less than or equal to {} (the number of indexes in the specified succeededIndexes field)", n_indexes.unwrap_or(0)));
            }
        }
    }
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
