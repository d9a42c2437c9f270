//! The CronJob controller's decisions, on an injected clock.

use super::*;
use serde_json::json;
use skiff_api::meta::Condition;
use skiff_api::workloads::JobStatus;

/// 2026-03-02T10:00:00Z, a Monday.
const T0: u64 = 1_772_445_600;

fn cron(spec: serde_json::Value) -> CronJob {
    let mut c: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "tick", "namespace": "default", "uid": "cj-uid",
            "resourceVersion": "7", "creationTimestamp": rfc3339(T0),
        },
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "metadata": {"labels": {"app": "tick"}},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                }}},
            },
        },
    }))
    .unwrap();
    let obj = c.spec.clone();
    let mut v = serde_json::to_value(&obj).unwrap();
    merge(&mut v, spec);
    c.spec = serde_json::from_value(v).unwrap();
    skiff_api::resource::Resource::default_fields(&mut c);
    c
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), &b) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}

fn zones_utc() -> (TimeZoneDatabase, TimeZone) {
    (TimeZoneDatabase::bundled(), TimeZone::UTC)
}

/// The Job the CronJob made for `at`, in a state: None running, or Complete/Failed.
fn job(cj: &CronJob, at: u64, ended: Option<&str>) -> Job {
    let mut j = job_for(cj, at as i64, &TimeZone::UTC);
    j.metadata.uid = Some(format!("job-{at}"));
    j.metadata.creation_timestamp = Some(rfc3339(at));
    let mut st = JobStatus {
        start_time: Some(rfc3339(at)),
        ..Default::default()
    };
    if let Some(c) = ended {
        st.conditions.push(Condition {
            type_: c.into(),
            status: "True".into(),
            last_transition_time: Some(rfc3339(at + 30)),
            ..Default::default()
        });
        if c == "Complete" {
            st.completion_time = Some(rfc3339(at + 30));
        }
    }
    j.status = Some(st);
    j
}

fn run(cj: &CronJob, jobs: &[Job], now: u64) -> (Vec<Action>, Vec<(String, String)>) {
    let (db, local) = zones_utc();
    let zones = Zones {
        db: &db,
        local: &local,
    };
    let refs: Vec<&Job> = jobs.iter().collect();
    let (actions, notes) = reconcile(cj, &refs, &zones, now);
    let events = notes
        .into_iter()
        .map(|n| match n.action {
            Action::Event {
                reason, message, ..
            } => (reason, message),
            other => panic!("not an event: {other:?}"),
        })
        .collect();
    (actions, events)
}

fn created(actions: &[Action]) -> Vec<&Job> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(Object::Job(j)) => Some(j),
            _ => None,
        })
        .collect()
}

fn deleted(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { key, .. } => Some(key.name.clone()),
            _ => None,
        })
        .collect()
}

fn status(actions: &[Action]) -> Option<CronJobStatus> {
    actions.iter().find_map(|a| match a {
        Action::Status(Object::CronJob(c)) => c.status.clone(),
        _ => None,
    })
}

fn reasons(events: &[(String, String)]) -> Vec<&str> {
    events.iter().map(|(r, _)| r.as_str()).collect()
}

#[test]
fn a_job_at_each_scheduled_time_never_twice() {
    let cj = cron(json!({}));
    // 10:04: the first time (10:05) has not come.
    let (a, e) = run(&cj, &[], T0 + 240);
    assert!(a.is_empty() && e.is_empty(), "{a:?}");
    // 10:05:01: the 10:05 run.
    let (a, e) = run(&cj, &[], T0 + 301);
    let jobs = created(&a);
    assert_eq!(jobs.len(), 1);
    let j = jobs[0];
    let at = T0 + 300;
    assert_eq!(j.metadata.name(), format!("tick-{}", at / 60));
    assert_eq!(
        j.metadata.labels.get("app").map(String::as_str),
        Some("tick")
    );
    assert_eq!(
        j.metadata.annotations.get(CRONJOB_SCHEDULED_TIMESTAMP),
        Some(&rfc3339(at))
    );
    let owner = j.metadata.controller().unwrap();
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("CronJob", "cj-uid")
    );
    assert_eq!(
        e,
        vec![(
            "SuccessfulCreate".to_string(),
            format!("Created job tick-{}", at / 60)
        )]
    );
    // Once that Job exists it is not created again; the status follows it.
    let running = job(&cj, at, None);
    let (a, _) = run(&cj, std::slice::from_ref(&running), T0 + 302);
    assert!(created(&a).is_empty());
    let st = status(&a).unwrap();
    assert_eq!(st.active.len(), 1);
    assert_eq!(st.active[0].name.as_deref(), Some(running.metadata.name()));
    assert_eq!(st.last_schedule_time, Some(rfc3339(at)));
}

#[test]
fn completion_is_seen_and_recorded() {
    let mut cj = cron(json!({}));
    let at = T0 + 300;
    let running = job(&cj, at, None);
    cj.status = Some(CronJobStatus {
        active: vec![reference(&running)],
        last_schedule_time: Some(rfc3339(at)),
        last_successful_time: None,
    });
    let done = job(&cj, at, Some("Complete"));
    let (a, e) = run(&cj, &[done], at + 60);
    let st = status(&a).unwrap();
    assert!(st.active.is_empty());
    assert_eq!(st.last_successful_time, Some(rfc3339(at + 30)));
    assert_eq!(
        e,
        vec![(
            "SawCompletedJob".to_string(),
            format!("Saw completed job: tick-{}, condition: Complete", at / 60)
        )]
    );
    // A Job deleted behind the controller's back.
    let (a, e) = run(&cj, &[], at + 60);
    assert!(status(&a).unwrap().active.is_empty());
    assert_eq!(reasons(&e), ["MissingJob"]);
}

#[test]
fn concurrency_policies() {
    let first = T0 + 300;
    let now = T0 + 601;
    // Allow: the next run starts beside the running one.
    let cj = cron(json!({"concurrencyPolicy": "Allow"}));
    let (a, _) = run(&cj, &[job(&cj, first, None)], now);
    assert_eq!(created(&a).len(), 1);
    assert!(deleted(&a).is_empty());
    // Forbid: it waits, saying why once per scheduled time...
    let cj = cron(json!({"concurrencyPolicy": "Forbid"}));
    let (a, e) = run(&cj, &[job(&cj, first, None)], now);
    assert!(created(&a).is_empty());
    assert_eq!(
        e,
        vec![(
            "JobAlreadyActive".to_string(),
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .to_string()
        )]
    );
    // ...and starts that run late once the earlier one ended (no deadline).
    let (a, _) = run(&cj, &[job(&cj, first, Some("Complete"))], now + 120);
    let jobs = created(&a);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].metadata.name(), format!("tick-{}", (T0 + 600) / 60));
    // With a deadline the late run is skipped once it passed.
    let cj = cron(json!({"concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 60}));
    let (a, _) = run(&cj, &[job(&cj, first, Some("Complete"))], now + 120);
    assert!(created(&a).is_empty());
    // Replace: the running one is deleted, then the new one created.
    let cj = cron(json!({"concurrencyPolicy": "Replace"}));
    let old = job(&cj, first, None);
    let (a, e) = run(&cj, std::slice::from_ref(&old), now);
    assert_eq!(deleted(&a), vec![old.metadata.name().to_string()]);
    assert_eq!(created(&a).len(), 1);
    assert_eq!(reasons(&e), ["SuccessfulDelete", "SuccessfulCreate"]);
    // Deletions run before creations in a pass.
    let del = a
        .iter()
        .find(|x| matches!(x, Action::Delete { .. }))
        .unwrap();
    let cre = a.iter().find(|x| matches!(x, Action::Create(_))).unwrap();
    assert!(del.rank() < cre.rank());
    // Nor does the replaced Job stay in the status.
    assert!(status(&a).is_none_or(|s| s.active.is_empty()));
}

#[test]
fn history_limits_delete_the_oldest_finished() {
    let cj = cron(json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1}));
    let mut jobs = Vec::new();
    for i in 1..=4 {
        jobs.push(job(&cj, T0 + 300 * i, Some("Complete")));
    }
    for i in 5..=6 {
        jobs.push(job(&cj, T0 + 300 * i, Some("Failed")));
    }
    jobs.push(job(&cj, T0 + 300 * 7, None));
    let (a, e) = run(&cj, &jobs, T0 + 300 * 7 + 10);
    let name = |i: u64| format!("tick-{}", (T0 + 300 * i) / 60);
    assert_eq!(deleted(&a), vec![name(1), name(2), name(5)]);
    assert_eq!(
        reasons(&e),
        ["SuccessfulDelete", "SuccessfulDelete", "SuccessfulDelete"]
    );
    assert!(created(&a).is_empty());
    // Limits of zero keep nothing finished.
    let cj = cron(json!({"successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0}));
    let (a, _) = run(&cj, &jobs, T0 + 300 * 7 + 10);
    assert_eq!(deleted(&a).len(), 6);
}

#[test]
fn suspended_creates_nothing() {
    let cj = cron(json!({"suspend": true}));
    let (a, e) = run(&cj, &[], T0 + 3600);
    assert!(created(&a).is_empty() && e.is_empty());
}

#[test]
fn starting_deadline_bounds_how_late_a_run_starts() {
    let cj = cron(json!({"startingDeadlineSeconds": 20}));
    // 10 s after 10:05: runs.
    assert_eq!(created(&run(&cj, &[], T0 + 310).0).len(), 1);
    // 30 s after: missed, nothing started (the next time is 10:10).
    assert!(created(&run(&cj, &[], T0 + 330).0).is_empty());
}

#[test]
fn clock_jumps() {
    // A board that booted with its clock at creation time and then learned (NTP) that
    // it is months later: one run, the latest, and a warning; not thousands.
    let cj = cron(json!({"schedule": "* * * * *"}));
    let later = T0 + 90 * 86_400 + 30;
    let (a, e) = run(&cj, &[], later);
    let jobs = created(&a);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].metadata.name(), format!("tick-{}", later / 60));
    assert_eq!(reasons(&e), ["TooManyMissedTimes", "SuccessfulCreate"]);
    // A clock set back behind the last run: nothing runs again until it passes it.
    let mut cj = cron(json!({}));
    cj.status = Some(CronJobStatus {
        last_schedule_time: Some(rfc3339(T0 + 3600)),
        ..Default::default()
    });
    let (a, e) = run(&cj, &[], T0 + 1800);
    assert!(created(&a).is_empty() && e.is_empty());
    let (a, _) = run(&cj, &[], T0 + 3600 + 301);
    assert_eq!(
        created(&a)[0].metadata.name(),
        format!("tick-{}", (T0 + 3900) / 60)
    );
}

#[test]
fn time_zones() {
    // 19:00 in Tokyo is 10:00 UTC.
    let cj = cron(json!({"schedule": "0 19 * * *", "timeZone": "Asia/Tokyo"}));
    let (a, _) = run(&cj, &[], T0 + 86_400 + 5);
    let j = created(&a)[0];
    assert_eq!(j.metadata.name(), format!("tick-{}", (T0 + 86_400) / 60));
    assert_eq!(
        j.metadata.annotations[CRONJOB_SCHEDULED_TIMESTAMP],
        "2026-03-03T19:00:00+09:00"
    );
    // A zone the database does not know (stored before, or from another database).
    let mut cj = cron(json!({}));
    cj.spec.time_zone = Some("Mars/Olympus".into());
    let (a, e) = run(&cj, &[], T0 + 600);
    assert!(created(&a).is_empty());
    assert_eq!(reasons(&e), ["UnknownTimeZone"]);
}

#[test]
fn events_are_not_repeated_by_passes() {
    let cj = cron(json!({"concurrencyPolicy": "Forbid"}));
    let running = job(&cj, T0 + 300, None);
    let mut cache = Cache::default();
    cache.put(1, Object::CronJob(cj.clone()));
    cache.put(2, Object::Job(running));
    let (db, local) = zones_utc();
    let zones = Zones {
        db: &db,
        local: &local,
    };
    let mut rec = Recorded::default();
    let events = |a: &[Action]| {
        a.iter()
            .filter(|x| matches!(x, Action::Event { .. }))
            .count()
    };
    let first = pass(&cache, &mut rec, &zones, T0 + 601);
    assert_eq!(events(&first), 1);
    let second = pass(&cache, &mut rec, &zones, T0 + 602);
    assert_eq!(events(&second), 0);
    // The next scheduled time is told again.
    let third = pass(&cache, &mut rec, &zones, T0 + 901);
    assert_eq!(events(&third), 1);
    // A CronJob gone is forgotten.
    pass(&Cache::default(), &mut rec, &zones, T0 + 902);
    assert!(rec.0.is_empty());
}
