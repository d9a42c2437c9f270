//! The CronJob controller, as Kubernetes' (cronjob_controllerv2): at each pass, for each
//! CronJob, the latest scheduled time not yet run (since its last run, or its creation;
//! no earlier than `startingDeadlineSeconds` ago) gets its Job, named after the scheduled
//! minute so a time is never run twice; `concurrencyPolicy` decides what happens while
//! an earlier run is active (Allow: run too; Forbid: wait, the run starts once the active
//! one ends if still within the deadline; Replace: delete the active ones first); the
//! finished Jobs beyond the history limits are deleted, oldest first.
//!
//! Time is the wall clock read at each pass (every second), never a timer: a clock that
//! jumps ahead runs the latest missed time once (and warns of more than 100 missed), a
//! clock that jumps back runs nothing until it passes the last scheduled time again.
//! The status is derived from the Jobs themselves (each carries its scheduled time), so a
//! crash between creating a Job and writing the status loses nothing.

use super::job::finished;
use super::{controller_ref, deleting, event, key_of, Action, ByController, Cache, Propagation};
use crate::HashMap;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::Timestamp;
use skiff_api::cron::{rfc3339_in, time_zone, Schedule};
use skiff_api::meta::{ObjectMeta, ObjectReference};
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::workloads::{CronJob, CronJobStatus, Job, CRONJOB_SCHEDULED_TIMESTAMP};
use skiff_api::{Kind, Object};
use std::collections::VecDeque;

/// Kubernetes warns when more than this many start times were missed.
pub const TOO_MANY_MISSED: usize = 100;

/// The events already written for each CronJob (by uid), so a pass every second does not
/// repeat them: a few dozen keys each, forgotten with the CronJob.
#[derive(Debug, Default)]
pub struct Recorded(HashMap<String, VecDeque<String>>);

const KEYS_KEPT: usize = 64;

impl Recorded {
    fn first_time(&mut self, uid: &str, key: &str) -> bool {
        let keys = self.0.entry(uid.to_string()).or_default();
        if keys.iter().any(|k| k == key) {
            return false;
        }
        if keys.len() == KEYS_KEPT {
            keys.pop_front();
        }
        keys.push_back(key.to_string());
        true
    }
}

/// What the zone database and the coordinator's own zone are.
pub struct Zones<'a> {
    /// The system's database (the bundled one answers what it lacks).
    pub db: &'a TimeZoneDatabase,
    /// The zone of CronJobs without `timeZone` (Kubernetes: kube-controller-manager's).
    pub local: &'a TimeZone,
}

/// An event and what makes it the same event again (not repeated).
pub struct Note {
    /// Unique per occurrence (reason and what it is about).
    pub key: String,
    /// The event.
    pub action: Action,
}

/// Every CronJob's writes, events not repeated.
pub fn pass(cache: &Cache, recorded: &mut Recorded, zones: &Zones, now: u64) -> Vec<Action> {
    let jobs = ByController::index(cache.typed::<Job>().map(|j| (&j.metadata, j)));
    let mut out = Vec::new();
    let mut live = std::collections::HashSet::new();
    for cj in cache.typed::<CronJob>() {
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let (actions, notes) = reconcile(cj, jobs.of(Some(&uid)), zones, now);
        out.extend(actions);
        for n in notes {
            if recorded.first_time(&uid, &n.key) {
                out.push(n.action);
            }
        }
        live.insert(uid);
    }
    recorded.0.retain(|uid, _| live.contains(uid));
    out
}

fn secs(t: &str) -> Option<i64> {
    parse_rfc3339(t)
        .map(|s| s as i64)
        .or_else(|| t.parse::<Timestamp>().ok().map(|t| t.as_second()))
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The time a Job of a CronJob was scheduled for (its annotation).
pub fn scheduled_at(j: &Job) -> Option<i64> {
    secs(j.metadata.annotations.get(CRONJOB_SCHEDULED_TIMESTAMP)?)
}

fn reference(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        namespace: Some(j.metadata.namespace().to_string()),
        name: Some(j.metadata.name().to_string()),
        uid: j.metadata.uid.clone(),
        ..Default::default()
    }
}

/// One CronJob: its writes and its events. `jobs` are the Jobs it controls.
pub fn reconcile(cj: &CronJob, jobs: &[&Job], zones: &Zones, now: u64) -> (Vec<Action>, Vec<Note>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let m = &cj.metadata;
    if deleting(m) {
        return (out, notes);
    }
    let mut note = |key: String, warning: bool, reason: &str, message: String| {
        notes.push(Note {
            key: format!("{reason}/{key}"),
            action: event(Kind::CronJob, m, warning, reason, message),
        })
    };
    let old = cj.status.clone().unwrap_or_default();
    let by_uid = |uid: &Option<String>| jobs.iter().find(|j| j.metadata.uid == *uid);

    // What the Jobs say: which run, when the last one was scheduled and succeeded.
    for r in &old.active {
        let name = r.name.clone().unwrap_or_default();
        match by_uid(&r.uid) {
            None => note(
                name.clone(),
                false,
                "MissingJob",
                format!("Active job went missing: {name}"),
            ),
            Some(j) => {
                if let Some((cond, _)) = finished(j) {
                    note(
                        name.clone(),
                        false,
                        "SawCompletedJob",
                        format!("Saw completed job: {name}, condition: {cond}"),
                    );
                }
            }
        }
    }
    let mut running: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| finished(j).is_none() && !deleting(&j.metadata))
        .collect();
    let last_scheduled = jobs
        .iter()
        .filter_map(|j| scheduled_at(j))
        .chain(old.last_schedule_time.as_deref().and_then(secs))
        .max();
    let last_success = jobs
        .iter()
        .filter(|j| matches!(finished(j), Some(("Complete", _))))
        .filter_map(|j| j.status.as_ref()?.completion_time.as_deref().and_then(secs))
        .chain(old.last_successful_time.as_deref().and_then(secs))
        .max();

    // History: the oldest finished Jobs beyond each limit go (and under Replace, the
    // running ones before the new run).
    let mut doomed = beyond_history(cj, jobs);

    // The run due now, if any.
    let mut create = None;
    if cj.spec.suspend != Some(true) {
        match due(cj, jobs, &running, zones, now, last_scheduled) {
            Due::Nothing => {}
            Due::Warn(key, warning, reason, message) => note(key, warning, reason, message),
            Due::Run { job, replace, many } => {
                if let Some((key, message)) = many {
                    note(key, true, "TooManyMissedTimes", message);
                }
                if replace {
                    doomed.append(&mut running);
                }
                create = Some(job);
            }
        }
    }
    for j in doomed {
        out.push(delete_job(j));
        let name = j.metadata.name().to_string();
        note(
            name.clone(),
            false,
            "SuccessfulDelete",
            format!("Deleted job {name}"),
        );
    }
    if let Some(job) = &create {
        let name = job.metadata.name().to_string();
        note(
            name.clone(),
            false,
            "SuccessfulCreate",
            format!("Created job {name}"),
        );
    }

    // The status, from the Jobs (the one created now joins at the next pass).
    let status = CronJobStatus {
        active: active_refs(&old.active, &running),
        last_schedule_time: last_scheduled.map(|s| rfc3339(s.max(0) as u64)),
        last_successful_time: last_success.map(|s| rfc3339(s.max(0) as u64)),
    };
    if status != old {
        let mut next = cj.clone();
        next.status = Some(status);
        out.push(Action::Status(Object::CronJob(next)));
    }
    if let Some(job) = create {
        out.push(Action::Create(Object::Job(*job)));
    }
    (out, notes)
}

/// The finished Jobs beyond the history limits, oldest first.
fn beyond_history<'a>(cj: &CronJob, jobs: &[&'a Job]) -> Vec<&'a Job> {
    let limits = [
        (
            "Complete",
            cj.spec.successful_jobs_history_limit.unwrap_or(3),
        ),
        ("Failed", cj.spec.failed_jobs_history_limit.unwrap_or(1)),
    ];
    let mut out = Vec::new();
    for (cond, limit) in limits {
        let mut done: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| !deleting(&j.metadata) && matches!(finished(j), Some((c, _)) if c == cond))
            .collect();
        done.sort_by_key(|j| (started(j), j.metadata.name().to_string()));
        let excess = done.len().saturating_sub(limit.max(0) as usize);
        out.extend_from_slice(&done[..excess]);
    }
    out
}

/// The running Jobs as the status lists them: those listed before keep their place, the
/// others follow by scheduled time.
fn active_refs(before: &[ObjectReference], running: &[&Job]) -> Vec<ObjectReference> {
    let mut active: Vec<ObjectReference> = before
        .iter()
        .filter(|r| running.iter().any(|j| j.metadata.uid == r.uid))
        .cloned()
        .collect();
    let mut newer: Vec<&Job> = running
        .iter()
        .copied()
        .filter(|j| !active.iter().any(|r| r.uid == j.metadata.uid))
        .collect();
    newer.sort_by_key(|j| (scheduled_at(j), j.metadata.name().to_string()));
    active.extend(newer.into_iter().map(reference));
    active
}

fn started(j: &Job) -> i64 {
    j.status
        .as_ref()
        .and_then(|s| s.start_time.as_deref())
        .or(j.metadata.creation_timestamp.as_deref())
        .and_then(secs)
        .unwrap_or(0)
}

fn delete_job(j: &Job) -> Action {
    Action::Delete {
        key: key_of(Kind::Job, &j.metadata),
        uid: j.metadata.uid.clone().unwrap_or_default(),
        propagation: Propagation::Background,
        force: false,
    }
}

/// What the schedule asks for now.
enum Due {
    Nothing,
    /// An event only (key, warning, reason, message).
    Warn(String, bool, &'static str, String),
    /// A Job to create (after deleting the running ones if `replace`); the warning about
    /// missed runs, if any.
    Run {
        job: Box<Job>,
        replace: bool,
        many: Option<(String, String)>,
    },
}

fn due(
    cj: &CronJob,
    jobs: &[&Job],
    running: &[&Job],
    zones: &Zones,
    now: u64,
    last_scheduled: Option<i64>,
) -> Due {
    let s = &cj.spec;
    let tz = match &s.time_zone {
        Some(name) => match time_zone(zones.db, name) {
            Ok(tz) => tz,
            Err(e) => {
                return Due::Warn(
                    name.clone(),
                    true,
                    "UnknownTimeZone",
                    format!("invalid timeZone: {name:?}: {e}"),
                )
            }
        },
        None => zones.local.clone(),
    };
    let sched = match Schedule::parse(&s.schedule) {
        Ok(x) => x,
        Err(e) => {
            return Due::Warn(
                s.schedule.clone(),
                true,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", s.schedule),
            )
        }
    };
    let now = now as i64;
    let created = cj.metadata.creation_timestamp.as_deref().and_then(secs);
    let Some(mut earliest) = last_scheduled.or(created) else {
        return Due::Nothing;
    };
    if let Some(d) = s.starting_deadline_seconds {
        earliest = earliest.max(now - d);
    }
    let (most_recent, many) = sched.most_recent(ts(earliest), ts(now), &tz, TOO_MANY_MISSED);
    let Some(at) = most_recent else {
        return Due::Nothing;
    };
    let at = at.as_second();
    let key = at.to_string();
    if let Some(d) = s.starting_deadline_seconds {
        if at + d < now {
            let when = ts(at).strftime("%a, %d %b %Y %H:%M:%S +0000");
            return Due::Warn(
                key,
                true,
                "MissSchedule",
                format!("Missed scheduled time to start a job: {when}"),
            );
        }
    }
    let name = cj.job_name(at);
    if jobs.iter().any(|j| j.metadata.name() == name) {
        // Run already.
        return Due::Nothing;
    }
    let policy = s.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && !running.is_empty() {
        return Due::Warn(
            key,
            false,
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .into(),
        );
    }
    let many = many.then(|| {
        (
            key.clone(),
            format!(
                "too many missed start times (more than {TOO_MANY_MISSED}). Set or decrease \
                 .spec.startingDeadlineSeconds or check clock skew"
            ),
        )
    });
    Due::Run {
        job: Box::new(job_for(cj, at, &tz)),
        replace: policy == "Replace",
        many,
    }
}

/// The Job a CronJob creates for a scheduled time.
pub fn job_for(cj: &CronJob, at: i64, tz: &TimeZone) -> Job {
    let t = &cj.spec.job_template;
    let mut annotations = t.metadata.annotations.clone();
    annotations.insert(CRONJOB_SCHEDULED_TIMESTAMP.into(), rfc3339_in(ts(at), tz));
    Job {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        metadata: ObjectMeta {
            name: Some(cj.job_name(at)),
            namespace: cj.metadata.namespace.clone(),
            labels: t.metadata.labels.clone(),
            annotations,
            owner_references: vec![controller_ref(Kind::CronJob, &cj.metadata)],
            ..Default::default()
        },
        spec: t.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
mod tests;
