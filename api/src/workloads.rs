//! Workload kinds: ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, CronJob.

use crate::k8s_struct;
use crate::meta::{Condition, ObjectMeta, ObjectReference};
use crate::pod::PodSpec;
use crate::selector::LabelSelector;
use crate::IntOrString;

k8s_struct! {
    /// `corev1.PodTemplateSpec`.
    pub struct PodTemplateSpec {
        pub metadata: ObjectMeta,
        pub spec: PodSpec,
    }
}

k8s_struct! {
    /// A ReplicaSet (`apps/v1`).
    pub struct ReplicaSet {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: ReplicaSetSpec,
        pub status: Option<ReplicaSetStatus>,
    }
}

k8s_struct! {
    /// `appsv1.ReplicaSetSpec`.
    pub struct ReplicaSetSpec {
        pub replicas: Option<i32>,
        pub min_ready_seconds: Option<i32>,
        pub selector: Option<LabelSelector>,
        pub template: PodTemplateSpec,
    }
}

k8s_struct! {
    /// `appsv1.ReplicaSetStatus`.
    pub struct ReplicaSetStatus {
        pub replicas: Option<i32>,
        pub fully_labeled_replicas: Option<i32>,
        pub ready_replicas: Option<i32>,
        pub available_replicas: Option<i32>,
        pub observed_generation: Option<i64>,
        pub conditions: Vec<Condition>,
    }
}

k8s_struct! {
    /// A Deployment (`apps/v1`).
    pub struct Deployment {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: DeploymentSpec,
        pub status: Option<DeploymentStatus>,
    }
}

k8s_struct! {
    /// `appsv1.DeploymentSpec`.
    pub struct DeploymentSpec {
        pub replicas: Option<i32>,
        pub selector: Option<LabelSelector>,
        pub template: PodTemplateSpec,
        pub strategy: Option<DeploymentStrategy>,
        pub min_ready_seconds: Option<i32>,
        pub revision_history_limit: Option<i32>,
        pub progress_deadline_seconds: Option<i32>,
        pub paused: Option<bool>,
    }
}

k8s_struct! {
    /// `appsv1.DeploymentStrategy`.
    pub struct DeploymentStrategy {
        #[serde(rename = "type")]
        pub type_: Option<String>,
        pub rolling_update: Option<RollingUpdate>,
    }
}

k8s_struct! {
    /// `rollingUpdate` of Deployments and DaemonSets.
    pub struct RollingUpdate {
        pub max_surge: Option<IntOrString>,
        pub max_unavailable: Option<IntOrString>,
    }
}

k8s_struct! {
    /// `appsv1.DeploymentStatus`.
    pub struct DeploymentStatus {
        pub observed_generation: Option<i64>,
        pub replicas: Option<i32>,
        pub updated_replicas: Option<i32>,
        pub ready_replicas: Option<i32>,
        pub available_replicas: Option<i32>,
        pub unavailable_replicas: Option<i32>,
        pub conditions: Vec<Condition>,
    }
}

k8s_struct! {
    /// A DaemonSet (`apps/v1`).
    pub struct DaemonSet {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: DaemonSetSpec,
        pub status: Option<DaemonSetStatus>,
    }
}

k8s_struct! {
    /// `appsv1.DaemonSetSpec`.
    pub struct DaemonSetSpec {
        pub selector: Option<LabelSelector>,
        pub template: PodTemplateSpec,
        pub update_strategy: Option<DaemonSetUpdateStrategy>,
        pub min_ready_seconds: Option<i32>,
        pub revision_history_limit: Option<i32>,
    }
}

k8s_struct! {
    /// `appsv1.DaemonSetUpdateStrategy`.
    pub struct DaemonSetUpdateStrategy {
        #[serde(rename = "type")]
        pub type_: Option<String>,
        pub rolling_update: Option<RollingUpdate>,
    }
}

k8s_struct! {
    /// `appsv1.DaemonSetStatus`.
    pub struct DaemonSetStatus {
        pub current_number_scheduled: Option<i32>,
        pub desired_number_scheduled: Option<i32>,
        pub number_misscheduled: Option<i32>,
        pub number_ready: Option<i32>,
        pub number_available: Option<i32>,
        pub updated_number_scheduled: Option<i32>,
        pub observed_generation: Option<i64>,
    }
}

k8s_struct! {
    /// A StatefulSet (`apps/v1`).
    pub struct StatefulSet {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: StatefulSetSpec,
        pub status: Option<StatefulSetStatus>,
    }
}

k8s_struct! {
    /// `appsv1.StatefulSetSpec`.
    pub struct StatefulSetSpec {
        pub replicas: Option<i32>,
        pub selector: Option<LabelSelector>,
        pub template: PodTemplateSpec,
        pub service_name: Option<String>,
        pub pod_management_policy: Option<String>,
        pub update_strategy: Option<StatefulSetUpdateStrategy>,
        pub revision_history_limit: Option<i32>,
        pub min_ready_seconds: Option<i32>,
        /// A claim per pod from each template: `<template>-<set>-<ordinal>`.
        pub volume_claim_templates: Vec<crate::storage::PersistentVolumeClaim>,
        /// What becomes of those claims when the set is deleted or scaled down.
        pub persistent_volume_claim_retention_policy:
            Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
    }
}

k8s_struct! {
    /// `appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy`: `Retain` (the default)
    /// or `Delete`, for each.
    pub struct StatefulSetPersistentVolumeClaimRetentionPolicy {
        pub when_deleted: Option<String>,
        pub when_scaled: Option<String>,
    }
}

k8s_struct! {
    /// `appsv1.StatefulSetUpdateStrategy`.
    pub struct StatefulSetUpdateStrategy {
        #[serde(rename = "type")]
        pub type_: Option<String>,
        pub rolling_update: Option<StatefulSetRollingUpdate>,
    }
}

k8s_struct! {
    /// `appsv1.RollingUpdateStatefulSetStrategy`.
    pub struct StatefulSetRollingUpdate {
        pub partition: Option<i32>,
        pub max_unavailable: Option<IntOrString>,
    }
}

k8s_struct! {
    /// `appsv1.StatefulSetStatus`.
    pub struct StatefulSetStatus {
        pub observed_generation: Option<i64>,
        pub replicas: Option<i32>,
        pub ready_replicas: Option<i32>,
        pub current_replicas: Option<i32>,
        pub updated_replicas: Option<i32>,
        pub available_replicas: Option<i32>,
        pub current_revision: Option<String>,
        pub update_revision: Option<String>,
    }
}

k8s_struct! {
    /// A Job (`batch/v1`).
    pub struct Job {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: JobSpec,
        pub status: Option<JobStatus>,
    }
}

k8s_struct! {
    /// `batchv1.JobSpec`.
    pub struct JobSpec {
        pub completions: Option<i32>,
        pub parallelism: Option<i32>,
        pub backoff_limit: Option<i32>,
        pub active_deadline_seconds: Option<i64>,
        pub ttl_seconds_after_finished: Option<i32>,
        pub selector: Option<LabelSelector>,
        pub manual_selector: Option<bool>,
        pub suspend: Option<bool>,
        pub template: PodTemplateSpec,
        /// `NonIndexed` (the default) or `Indexed`: each pod gets an index in
        /// `0..completions`, and each index must succeed once.
        pub completion_mode: Option<String>,
        /// Indexed: failures each index may have before it is given up.
        pub backoff_limit_per_index: Option<i32>,
        /// Indexed, with `backoffLimitPerIndex`: failed indexes the Job may have.
        pub max_failed_indexes: Option<i32>,
        pub pod_failure_policy: Option<PodFailurePolicy>,
        pub success_policy: Option<SuccessPolicy>,
    }
}

k8s_struct! {
    /// `batchv1.PodFailurePolicy`: what a failed pod's exit codes or conditions mean.
    pub struct PodFailurePolicy {
        pub rules: Vec<PodFailurePolicyRule>,
    }
}

k8s_struct! {
    /// `batchv1.PodFailurePolicyRule`: the first that matches decides.
    pub struct PodFailurePolicyRule {
        /// `FailJob`, `FailIndex`, `Ignore` or `Count`.
        pub action: String,
        pub on_exit_codes: Option<PodFailurePolicyOnExitCodes>,
        pub on_pod_conditions: Vec<PodFailurePolicyOnPodCondition>,
    }
}

k8s_struct! {
    /// `batchv1.PodFailurePolicyOnExitCodesRequirement`.
    pub struct PodFailurePolicyOnExitCodes {
        pub container_name: Option<String>,
        /// `In` or `NotIn`.
        pub operator: String,
        pub values: Vec<i32>,
    }
}

k8s_struct! {
    /// `batchv1.PodFailurePolicyOnPodConditionsPattern`.
    pub struct PodFailurePolicyOnPodCondition {
        #[serde(rename = "type")]
        pub type_: String,
        /// `True` by default.
        pub status: Option<String>,
    }
}

k8s_struct! {
    /// `batchv1.SuccessPolicy`: when an Indexed Job has succeeded before every index did.
    pub struct SuccessPolicy {
        pub rules: Vec<SuccessPolicyRule>,
    }
}

k8s_struct! {
    /// `batchv1.SuccessPolicyRule`: these indexes (or this many of them) succeeded.
    pub struct SuccessPolicyRule {
        pub succeeded_indexes: Option<String>,
        pub succeeded_count: Option<i32>,
    }
}

k8s_struct! {
    /// `batchv1.JobStatus`.
    pub struct JobStatus {
        pub active: Option<i32>,
        pub succeeded: Option<i32>,
        pub failed: Option<i32>,
        pub start_time: Option<String>,
        pub completion_time: Option<String>,
        pub conditions: Vec<Condition>,
        /// Indexed: the indexes that succeeded, as intervals (`1,3-5`).
        pub completed_indexes: Option<String>,
        /// Indexed with `backoffLimitPerIndex`: the indexes given up.
        pub failed_indexes: Option<String>,
    }
}

/// The annotation (and label) that gives an Indexed Job's pod its index.
pub const JOB_COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Kubernetes' interval notation for index sets: sorted, every
/// run of consecutive indexes as `a-b` (a lone one as `a`), comma-separated.
pub fn format_indexes(set: &std::collections::BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end = it.next().unwrap_or(end);
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// Reads [`format_indexes`] notation; every index must be below `limit`.
pub fn parse_indexes(s: &str, limit: i32) -> Result<std::collections::BTreeSet<i32>, String> {
    let mut out = std::collections::BTreeSet::new();
    let mut last: Option<i32> = None;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let num = |x: &str| {
            x.parse::<i32>()
                .map_err(|_| format!("cannot parse integer index: {x:?}"))
        };
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            return Err(format!("non-increasing order, previous: {a}, current: {b}"));
        }
        if last.is_some_and(|l| a <= l) {
            return Err(format!(
                "overlapping intervals, previous: {}, current: {a}",
                last.unwrap_or(0)
            ));
        }
        if b >= limit {
            return Err(format!(
                "too large: {b}, must be less than completions {limit}"
            ));
        }
        out.extend(a..=b);
        last = Some(b);
    }
    Ok(out)
}

k8s_struct! {
    /// A CronJob (`batch/v1`): Jobs created on a schedule.
    pub struct CronJob {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: CronJobSpec,
        pub status: Option<CronJobStatus>,
    }
}

k8s_struct! {
    /// `batchv1.CronJobSpec`.
    pub struct CronJobSpec {
        /// Five cron fields or a macro (`@hourly`).
        pub schedule: String,
        /// The IANA zone the schedule is read in (default: the coordinator's).
        pub time_zone: Option<String>,
        /// A run later than this after its time is skipped.
        pub starting_deadline_seconds: Option<i64>,
        /// `Allow`, `Forbid` or `Replace`.
        pub concurrency_policy: Option<String>,
        /// No new runs while true.
        pub suspend: Option<bool>,
        /// The Job each run creates (boxed: it is most of the object's size).
        pub job_template: Box<JobTemplateSpec>,
        /// Finished Jobs kept (default 3 succeeded, 1 failed).
        pub successful_jobs_history_limit: Option<i32>,
        pub failed_jobs_history_limit: Option<i32>,
    }
}

k8s_struct! {
    /// `batchv1.JobTemplateSpec`.
    pub struct JobTemplateSpec {
        pub metadata: ObjectMeta,
        pub spec: JobSpec,
    }
}

k8s_struct! {
    /// `batchv1.CronJobStatus`.
    pub struct CronJobStatus {
        /// The Jobs running.
        pub active: Vec<ObjectReference>,
        pub last_schedule_time: Option<String>,
        pub last_successful_time: Option<String>,
    }
}

/// The annotation a CronJob's Job carries: the time it was scheduled for (RFC 3339 in
/// the CronJob's zone).
pub const CRONJOB_SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The longest CronJob name: its Jobs add `-` and the scheduled minute (11 characters).
pub const CRONJOB_NAME_MAX: usize = 52;

impl CronJob {
    /// The name of the Job for a scheduled time (seconds): Kubernetes' (the minute).
    pub fn job_name(&self, scheduled: i64) -> String {
        format!("{}-{}", self.metadata.name(), scheduled.div_euclid(60))
    }
}

/// Deployments and ReplicaSets: the revision annotation.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label a Deployment's ReplicaSets and their pods carry: their template's hash.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

impl ReplicaSet {
    /// Its revision (`deployment.kubernetes.io/revision`), 0 when it has none.
    pub fn revision(&self) -> i64 {
        self.metadata
            .annotations
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }

    /// Its template as its Deployment's template was: without `pod-template-hash`.
    pub fn template_without_hash(&self) -> PodTemplateSpec {
        let mut t = self.spec.template.clone();
        t.metadata.labels.remove(POD_TEMPLATE_HASH_LABEL);
        t
    }
}

/// What `rollout undo` puts back: the template of revision `to` (0: the one before the
/// current), among the ReplicaSets a Deployment owns.
pub fn rollback_template(
    d: &Deployment,
    owned: &[ReplicaSet],
    to: i64,
) -> Result<(i64, PodTemplateSpec), String> {
    let mut revs: Vec<&ReplicaSet> = owned.iter().filter(|r| r.revision() > 0).collect();
    revs.sort_by_key(|r| std::cmp::Reverse(r.revision()));
    let pick = if to == 0 {
        let current = revs
            .iter()
            .position(|r| r.template_without_hash() == d.spec.template);
        match current {
            Some(i) => revs
                .iter()
                .enumerate()
                .find(|(j, _)| *j != i)
                .map(|(_, r)| *r),
            None => revs.first().copied(),
        }
        .ok_or_else(|| "no rollout history found".to_string())?
    } else {
        revs.iter()
            .find(|r| r.revision() == to)
            .copied()
            .ok_or_else(|| format!("unable to find specified revision {to} in history"))?
    };
    Ok((pick.revision(), pick.template_without_hash()))
}
