//! The Job controller: runs pods until `completions` succeed (`parallelism` at a time),
//! gives up after `backoffLimit` failures (retrying with Kubernetes' exponential delay,
//! 10 s doubling to 6 min) or `activeDeadlineSeconds`, honours `suspend`, and deletes a
//! finished Job after `ttlSecondsAfterFinished`.

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
    let succeeded = owned.iter().filter(|p| phase(p) == "Succeeded").count() as i32;
    let failed_pods: Vec<&&Pod> = owned.iter().filter(|p| phase(p) == "Failed").collect();
    let failed = failed_pods.len() as i32 + restarts(j, owned);
    let prev = j.status.clone().unwrap_or_default();
    let start = prev.start_time.clone().unwrap_or_else(|| rfc3339(now));
    let mut status = JobStatus {
        active: Some(active.len() as i32),
        succeeded: Some(succeeded),
        failed: Some(failed),
        start_time: Some(start.clone()),
        completion_time: prev.completion_time.clone(),
        conditions: prev.conditions.clone(),
    };
    let suspended = j.spec.suspend == Some(true);
    let backoff_limit = j.spec.backoff_limit.unwrap_or(6);
    let started = parse_rfc3339(&start).unwrap_or(now);
    let done = match j.spec.completions {
        Some(c) => succeeded >= c,
        // A work queue: done when one succeeded and none is left running.
        None => succeeded > 0 && active.is_empty(),
    };
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
    if failed > backoff_limit {
        fail(
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
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
    } else if done {
        set_condition(&mut status.conditions, "Complete", "True", "", "", now);
        status.completion_time = Some(rfc3339(now));
        out.extend(active.iter().map(|p| delete_pod(p)));
        out.push(super::event(
            Kind::Job,
            &j.metadata,
            false,
            "Completed",
            "Job completed".into(),
        ));
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
    /// Failed pods, and container restarts under OnFailure.
    failed: i32,
    succeeded: i32,
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
