//! The Job controller: runs pods until `completions` succeed (`parallelism` at a time),
//! gives up after `backoffLimit` failures (retrying with Kubernetes' exponential delay,
//! 10 s doubling to 6 min) or `activeDeadlineSeconds`, honours `suspend`, and deletes a
//! finished Job after `ttlSecondsAfterFinished`.

use super::job_index::{self, Verdict};
use super::{
    delete_pod, deleting, is_active, phase, pod_from_template, set_condition, Action, PodsByOwner,
};
use skiff_api::pod::Pod;
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::workloads::{Job, JobStatus};
use skiff_api::{Kind, Object};

/// When a job is finished: its Complete or Failed condition, and when.
pub fn finished(j: &Job) -> Option<(&str, u64)> {
    j.status.as_ref()?.conditions.iter().find_map(|c| {
        ((c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True").then(|| {
            (
                c.type_.as_str(),
                c.last_transition_time
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .unwrap_or(0),
            )
        })
    })
}

/// When a finished pod ended (its containers' last finish, else its creation).
fn finished_at(p: &Pod) -> u64 {
    let s = p.status.as_ref();
    s.into_iter()
        .flat_map(|s| &s.container_statuses)
        .filter_map(|c| {
            c.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_deref()
        })
        .filter_map(parse_rfc3339)
        .max()
        .or_else(|| {
            p.metadata
                .creation_timestamp
                .as_deref()
                .and_then(parse_rfc3339)
        })
        .unwrap_or(0)
}

/// Kubernetes' pod failure backoff: 10 s, doubling per failure, at most 6 min.
pub fn backoff_secs(failures: i32) -> u64 {
    if failures <= 0 {
        return 0;
    }
    (10u64 << (failures - 1).min(6) as u32).min(360)
}

/// What one Job needs.
pub fn reconcile(j: &Job, pods: &PodsByOwner<'_>, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    let owned = pods.of(j.metadata.uid.as_deref());
    let active: Vec<&&Pod> = owned.iter().filter(|p| is_active(p)).collect();
    if let Some((_, at)) = finished(j) {
        if !deleting(&j.metadata) {
            out.extend(active.iter().map(|p| delete_pod(p)));
            if let Some(ttl) = j.spec.ttl_seconds_after_finished {
                if at + ttl.max(0) as u64 <= now {
                    out.push(super::delete(Kind::Job, &j.metadata));
                }
            }
        }
        return out;
    }
    if deleting(&j.metadata) {
        return out;
    }
    let Facts {
        judged,
        failed_pods,
        failed,
        ix,
        succeeded,
    } = facts(j, owned);
    let start =
        (j.status.as_ref().and_then(|s| s.start_time.clone())).unwrap_or_else(|| rfc3339(now));
    let mut status = next_status(j, &start, active.len(), failed, succeeded, ix.as_ref());
    let suspended = j.spec.suspend == Some(true);
    let backoff_limit = j.spec.backoff_limit.unwrap_or(6);
    let started = parse_rfc3339(&start).unwrap_or(now);
    // A work queue (no completions) is done when one succeeded and none runs.
    let done = j
        .spec
        .completions
        .map_or(succeeded > 0 && active.is_empty(), |c| succeeded >= c);
    let success_rule = ix
        .as_ref()
        .and_then(|ix| job_index::success_rule(j, &ix.completed));
    let (indexes_failed, too_many_failed_indexes) = index_failures(j, ix.as_ref());
    let fail_job = judged.iter().find_map(|(_, v)| match v {
        Verdict::FailJob(m) => Some(m.clone()),
        _ => None,
    });
    let mut fail = |reason: &str, message: &str, out: &mut Vec<Action>| {
        set_condition(
            &mut status.conditions,
            "Failed",
            "True",
            reason,
            message,
            now,
        );
        out.extend(active.iter().map(|p| delete_pod(p)));
        out.push(super::event(
            Kind::Job,
            &j.metadata,
            true,
            reason,
            message.into(),
        ));
    };
    if let Some(msg) = fail_job {
        fail("PodFailurePolicy", &msg, &mut out);
    } else if failed > backoff_limit {
        fail(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            &mut out,
        );
    } else if too_many_failed_indexes {
        fail(
            "MaxFailedIndexesExceeded",
            "Job has exceeded the specified maximal number of failed indexes",
            &mut out,
        );
    } else if j
        .spec
        .active_deadline_seconds
        .is_some_and(|d| !suspended && started + d.max(0) as u64 <= now)
    {
        fail(
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
            &mut out,
        );
    } else if done || success_rule.is_some() {
        complete(j, &active, done, success_rule, &mut status, now, &mut out);
    } else if indexes_failed {
        fail("FailedIndexes", "Job has failed indexes", &mut out);
    } else if suspended {
        set_condition(
            &mut status.conditions,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        );
        out.extend(active.iter().map(|p| delete_pod(p)));
    } else {
        let running = Running {
            active: &active,
            failed_pods: &failed_pods,
            failed,
            succeeded,
            indexes: ix.as_ref(),
        };
        run(j, &running, &mut status, now, &mut out);
    }
    if j.status.as_ref() != Some(&status) {
        let mut next = j.clone();
        next.status = Some(status);
        out.push(Action::Status(Object::Job(next)));
    }
    out
}

/// The Job's status as its pods now say (its conditions and times carried over).
fn next_status(
    j: &Job,
    start: &str,
    active: usize,
    failed: i32,
    succeeded: i32,
    ix: Option<&job_index::Indexes>,
) -> JobStatus {
    let prev = j.status.clone().unwrap_or_default();
    let set_or_none = |set: &std::collections::BTreeSet<i32>| {
        (!set.is_empty()).then(|| skiff_api::workloads::format_indexes(set))
    };
    JobStatus {
        active: Some(active as i32),
        succeeded: Some(succeeded),
        failed: Some(failed),
        start_time: Some(start.to_string()),
        completion_time: prev.completion_time,
        conditions: prev.conditions,
        completed_indexes: ix.and_then(|ix| set_or_none(&ix.completed)),
        failed_indexes: ix
            .filter(|_| j.spec.backoff_limit_per_index.is_some())
            .and_then(|ix| set_or_none(&ix.failed)),
    }
}

/// For an Indexed Job: whether every index completed or was given up with some given
/// up, and whether more were given up than `maxFailedIndexes` allows.
fn index_failures(j: &Job, ix: Option<&job_index::Indexes>) -> (bool, bool) {
    let Some(ix) = ix else {
        return (false, false);
    };
    let all = (ix.completed.len() + ix.failed.len()) as i32 >= j.spec.completions.unwrap_or(0);
    let too_many = j
        .spec
        .max_failed_indexes
        .is_some_and(|m| ix.failed.len() as i32 > m);
    (!ix.failed.is_empty() && all, too_many)
}

/// A Job that succeeded (every completion, or a success policy rule met, said in
/// `SuccessCriteriaMet` first): Complete, its active pods removed.
fn complete(
    j: &Job,
    active: &[&&Pod],
    done: bool,
    success_rule: Option<usize>,
    status: &mut JobStatus,
    now: u64,
    out: &mut Vec<Action>,
) {
    let (reason, message) = match success_rule {
        Some(i) if !done => {
            let m = format!("Matched rules at index {i}");
            set_condition(
                &mut status.conditions,
                "SuccessCriteriaMet",
                "True",
                "SuccessPolicy",
                &m,
                now,
            );
            ("SuccessPolicy", m)
        }
        _ => ("", String::new()),
    };
    set_condition(
        &mut status.conditions,
        "Complete",
        "True",
        reason,
        &message,
        now,
    );
    status.completion_time = Some(rfc3339(now));
    out.extend(active.iter().map(|p| delete_pod(p)));
    out.push(super::event(
        Kind::Job,
        &j.metadata,
        false,
        "Completed",
        "Job completed".into(),
    ));
}

/// What a Job's finished pods say: each failed one judged by the pod failure policy, the
/// failures that count, an Indexed Job's indexes, and how many succeeded.
struct Facts<'a, 'p> {
    judged: Vec<(&'p Pod, Verdict)>,
    failed_pods: Vec<&'a &'p Pod>,
    failed: i32,
    ix: Option<job_index::Indexes>,
    succeeded: i32,
}

fn facts<'a, 'p>(j: &Job, owned: &'a [&'p Pod]) -> Facts<'a, 'p> {
    let indexed = j.spec.completion_mode.as_deref() == Some("Indexed");
    let succeeded_pods: Vec<&Pod> = owned
        .iter()
        .filter(|p| phase(p) == "Succeeded")
        .copied()
        .collect();
    let failed_pods: Vec<&&Pod> = owned.iter().filter(|p| phase(p) == "Failed").collect();
    // Each failed pod judged by the pod failure policy; ignored ones do not count.
    let judged: Vec<(&Pod, Verdict)> = failed_pods
        .iter()
        .map(|p| (**p, job_index::verdict(j, p)))
        .collect();
    let counted = judged
        .iter()
        .filter(|(_, v)| !matches!(v, Verdict::Ignore))
        .count() as i32;
    let failed = counted + restarts(j, owned);
    let ix = indexed.then(|| job_index::indexes(j, &succeeded_pods, &judged));
    let succeeded = match &ix {
        Some(ix) => ix.completed.len() as i32,
        None => succeeded_pods.len() as i32,
    };
    Facts {
        judged,
        failed_pods,
        failed,
        ix,
        succeeded,
    }
}

/// With OnFailure the kubelet restarts containers in place: each restart is a failure.
fn restarts(j: &Job, owned: &[&Pod]) -> i32 {
    if j.spec.template.spec.restart_policy.as_deref() != Some("OnFailure") {
        return 0;
    }
    owned
        .iter()
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| &s.container_statuses)
        .filter_map(|c| c.restart_count)
        .sum()
}

/// What a running Job's pods say.
struct Running<'a, 'p> {
    active: &'a [&'a &'p Pod],
    failed_pods: &'a [&'a &'p Pod],
    /// Failed pods that count, and container restarts under OnFailure.
    failed: i32,
    succeeded: i32,
    /// An Indexed Job's indexes.
    indexes: Option<&'a job_index::Indexes>,
}

/// A Job neither finished nor suspended: resumed if it was, pods started up to
/// parallelism (after the back-off of its last failure) or the extra ones deleted.
fn run(j: &Job, r: &Running<'_, '_>, status: &mut JobStatus, now: u64, out: &mut Vec<Action>) {
    let parallelism = j.spec.parallelism.unwrap_or(1).max(0);
    if status
        .conditions
        .iter()
        .any(|c| c.type_ == "Suspended" && c.status == "True")
    {
        set_condition(
            &mut status.conditions,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        );
    }
    if let Some(ix) = r.indexes {
        return run_indexed(j, r, ix, parallelism, now, out);
    }
    let wanted = match j.spec.completions {
        Some(c) => parallelism.min(c - r.succeeded),
        None if r.succeeded > 0 => 0,
        None => parallelism,
    }
    .max(0) as usize;
    if r.active.len() < wanted {
        let last_failure = r
            .failed_pods
            .iter()
            .map(|p| finished_at(p))
            .max()
            .unwrap_or(0);
        if r.failed == 0 || last_failure + backoff_secs(r.failed) <= now {
            for _ in r.active.len()..wanted {
                let pod = pod_from_template(
                    &j.spec.template,
                    Kind::Job,
                    &j.metadata,
                    None,
                    Some(format!("{}-", j.metadata.name())),
                    &[
                        ("job-name", j.metadata.name()),
                        ("controller-uid", j.metadata.uid.as_deref().unwrap_or("")),
                    ],
                );
                out.push(Action::Create(Object::Pod(pod)));
            }
        }
    } else if r.active.len() > wanted {
        let mut extra = r.active.to_vec();
        extra.sort_by_key(|p| super::deletion_rank(p));
        for p in &extra[..r.active.len() - wanted] {
            out.push(delete_pod(p));
        }
    }
}

/// An Indexed Job's pods: the active pods of indexes already done (or given up, or run
/// twice) and those over parallelism removed; the lowest pending indexes started, each
/// after its back-off (its own failures with `backoffLimitPerIndex`, the Job's without).
fn run_indexed(
    j: &Job,
    r: &Running<'_, '_>,
    ix: &job_index::Indexes,
    parallelism: i32,
    now: u64,
    out: &mut Vec<Action>,
) {
    let completions = j.spec.completions.unwrap_or(0);
    let mut running = std::collections::BTreeSet::new();
    let mut keep = Vec::new();
    for p in r.active {
        match job_index::index_of(p) {
            Some(i)
                if !ix.completed.contains(&i) && !ix.failed.contains(&i) && running.insert(i) =>
            {
                keep.push(*p)
            }
            _ => out.push(delete_pod(p)),
        }
    }
    let parallelism = parallelism.max(0) as usize;
    if keep.len() > parallelism {
        keep.sort_by_key(|p| super::deletion_rank(p));
        for p in &keep[..keep.len() - parallelism] {
            out.push(delete_pod(p));
        }
        return;
    }
    let last_failure = |index: Option<i32>| {
        r.failed_pods
            .iter()
            .filter(|p| index.is_none() || job_index::index_of(p) == index)
            .map(|p| finished_at(p))
            .max()
            .unwrap_or(0)
    };
    let pending = (0..completions)
        .filter(|i| !ix.completed.contains(i) && !ix.failed.contains(i) && !running.contains(i));
    let mut room = parallelism - keep.len();
    for i in pending {
        if room == 0 {
            break;
        }
        let (failures, last) = match j.spec.backoff_limit_per_index {
            Some(_) => (
                ix.failures.get(&i).copied().unwrap_or(0),
                last_failure(Some(i)),
            ),
            None => (r.failed, last_failure(None)),
        };
        if failures > 0 && last + backoff_secs(failures) > now {
            continue;
        }
        out.push(Action::Create(Object::Pod(indexed_pod(j, i))));
        room -= 1;
    }
}

/// An Indexed Job's pod for index `i`, as Kubernetes makes it: the index in an annotation
/// and a label, in `JOB_COMPLETION_INDEX` in every container, and the hostname
/// `<job>-<i>`.
fn indexed_pod(j: &Job, i: i32) -> Pod {
    use skiff_api::pod::{EnvVar, EnvVarSource, ObjectFieldSelector};
    use skiff_api::workloads::JOB_COMPLETION_INDEX;
    let name = j.metadata.name();
    let mut pod = pod_from_template(
        &j.spec.template,
        Kind::Job,
        &j.metadata,
        None,
        Some(format!("{name}-{i}-")),
        &[
            ("job-name", name),
            ("controller-uid", j.metadata.uid.as_deref().unwrap_or("")),
        ],
    );
    let index = i.to_string();
    pod.metadata
        .annotations
        .insert(JOB_COMPLETION_INDEX.into(), index.clone());
    pod.metadata
        .labels
        .insert(JOB_COMPLETION_INDEX.into(), index);
    if pod.spec.hostname.is_none() {
        pod.spec.hostname = Some(format!("{name}-{i}"));
    }
    let env = EnvVar {
        name: "JOB_COMPLETION_INDEX".into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.annotations['{JOB_COMPLETION_INDEX}']"),
            }),
            ..Default::default()
        }),
    };
    for c in pod
        .spec
        .containers
        .iter_mut()
        .chain(pod.spec.init_containers.iter_mut())
    {
        if !c.env.iter().any(|e| e.name == env.name) {
            c.env.push(env.clone());
        }
    }
    pod
}
