//! A pod's phase and conditions from its containers' statuses, as the kubelet computes
//! them. Pure functions: the worker gathers the container statuses.

use skiff_api::meta::Condition;
use skiff_api::pod::{ContainerStatus, PodStatus};

fn terminated_ok(c: &ContainerStatus) -> Option<bool> {
    let t = c.state.as_ref()?.terminated.as_ref()?;
    Some(t.exit_code == Some(0))
}

fn running_started(c: &ContainerStatus) -> bool {
    c.state.as_ref().is_some_and(|s| s.running.is_some()) && c.started == Some(true)
}

/// Whether an init container is done with: a plain one ran to completion, a sidecar
/// (`sidecar`) has started.
fn init_ok(c: &ContainerStatus, sidecar: bool) -> bool {
    match sidecar {
        true => running_started(c),
        false => terminated_ok(c) == Some(true),
    }
}

/// Whether the pod is initialized: every plain init container ran to completion and every
/// sidecar started (`sidecars` marks them, one flag per init container); or, with
/// sidecars, an app container already ran (a sidecar restarting later does not undo it).
pub fn initialized(init: &[ContainerStatus], sidecars: &[bool], apps: &[ContainerStatus]) -> bool {
    let each = init.len() == sidecars.len()
        && init.iter().zip(sidecars).all(|(c, &side)| init_ok(c, side));
    let apps_ran = || {
        apps.iter().any(|c| {
            c.state
                .as_ref()
                .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
        })
    };
    each || (sidecars.contains(&true) && apps_ran())
}

/// The pod's phase (the kubelet's `getPhase`): sidecars never decide it.
pub fn phase(
    restart_policy: &str,
    init: &[ContainerStatus],
    sidecars: &[bool],
    containers: &[ContainerStatus],
) -> &'static str {
    if !initialized(init, sidecars, containers) {
        // A plain init container that failed and will not be retried fails the pod.
        let failed = init
            .iter()
            .zip(sidecars)
            .any(|(c, &side)| !side && terminated_ok(c) == Some(false));
        if failed && restart_policy == "Never" {
            return "Failed";
        }
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        let Some(s) = &c.state else {
            waiting += 1;
            continue;
        };
        if s.running.is_some() {
            running += 1;
        } else if let Some(t) = &s.terminated {
            stopped += 1;
            if t.exit_code == Some(0) {
                succeeded += 1;
            }
        } else if c
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            // Waiting to restart after a termination.
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ => "Failed",
        };
    }
    "Pending"
}

fn condition(
    prev: Option<&PodStatus>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &str,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // The transition time stays while the condition's status does not change.
    let since = prev
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_string());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: if ok { None } else { reason.map(String::from) },
        message: if ok { None } else { message },
        last_transition_time: Some(since),
        ..Default::default()
    }
}

fn names(cs: &[&ContainerStatus]) -> String {
    let n: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
    format!("[{}]", n.join(" "))
}

/// PodScheduled, Initialized, ContainersReady and Ready (a sidecar's readiness counts).
pub fn conditions(
    prev: Option<&PodStatus>,
    init: &[ContainerStatus],
    sidecars: &[bool],
    containers: &[ContainerStatus],
    phase: &str,
    now: &str,
) -> Vec<Condition> {
    let init_done = initialized(init, sidecars, containers);
    let not_init: Vec<&ContainerStatus> = init
        .iter()
        .zip(sidecars)
        .filter(|(c, &side)| !init_ok(c, side))
        .map(|(c, _)| c)
        .collect();
    let side_statuses = init.iter().zip(sidecars).filter(|(_, &side)| side);
    let unready: Vec<&ContainerStatus> = side_statuses
        .map(|(c, _)| c)
        .chain(containers)
        .filter(|c| c.ready != Some(true))
        .collect();
    let completed = matches!(phase, "Succeeded" | "Failed");
    let ready = unready.is_empty() && !containers.is_empty() && init_done;
    let ready_reason = if completed {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let ready_msg =
        (!completed).then(|| format!("containers with unready status: {}", names(&unready)));
    vec![
        condition(prev, "PodScheduled", true, None, None, now),
        condition(
            prev,
            "Initialized",
            init_done,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                names(&not_init)
            )),
            now,
        ),
        condition(
            prev,
            "ContainersReady",
            ready,
            Some(ready_reason),
            ready_msg.clone(),
            now,
        ),
        condition(prev, "Ready", ready, Some(ready_reason), ready_msg, now),
    ]
}

/// The restart delay after `restarts` restarts: `base` doubling up to 30 × base (10 s to
/// 5 min with the kubelet's base).
pub fn backoff(
    base: std::time::Duration,
    current: Option<std::time::Duration>,
) -> std::time::Duration {
    match current {
        None => base,
        Some(d) => (d * 2).min(base * 30),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::pod::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    };
    use std::time::Duration;

    fn running(name: &str, ready: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            ready: Some(ready),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn exited(name: &str, code: i32) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            ready: Some(false),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: Some(code),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn crashlooping(name: &str) -> ContainerStatus {
        let mut c = exited(name, 1);
        c.last_state = c.state.take();
        c.state = Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("CrashLoopBackOff".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        c
    }

    fn creating(name: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn phases_follow_the_kubelet() {
        assert_eq!(phase("Always", &[], &[], &[creating("a")]), "Pending");
        assert_eq!(phase("Always", &[], &[], &[running("a", true)]), "Running");
        assert_eq!(phase("Always", &[], &[], &[crashlooping("a")]), "Running");
        assert_eq!(phase("Never", &[], &[], &[exited("a", 0)]), "Succeeded");
        assert_eq!(
            phase("Never", &[], &[], &[exited("a", 0), exited("b", 2)]),
            "Failed"
        );
        assert_eq!(phase("OnFailure", &[], &[], &[exited("a", 0)]), "Succeeded");
        assert_eq!(
            phase("OnFailure", &[], &[], &[crashlooping("a")]),
            "Running"
        );
        assert_eq!(
            phase("Always", &[], &[], &[running("a", true), exited("b", 0)]),
            "Running"
        );
        // Init containers hold the pod in Pending; a failed one fails a Never pod.
        assert_eq!(
            phase("Always", &[running("i", false)], &[false], &[creating("a")]),
            "Pending"
        );
        assert_eq!(
            phase("Never", &[exited("i", 3)], &[false], &[creating("a")]),
            "Failed"
        );
        assert_eq!(
            phase(
                "Always",
                &[exited("i", 0)],
                &[false],
                &[running("a", false)]
            ),
            "Running"
        );
    }

    #[test]
    fn sidecars_initialize_once_started_count_for_readiness_and_never_decide_the_phase() {
        let mut side = running("log", false);
        // Running but not yet started (its startup probe): still initializing.
        assert_eq!(
            phase("Never", &[side.clone()], &[true], &[creating("a")]),
            "Pending"
        );
        side.started = Some(true);
        assert!(initialized(&[side.clone()], &[true], &[]));
        assert_eq!(
            phase("Never", &[side.clone()], &[true], &[running("a", true)]),
            "Running"
        );
        // Not ready, it holds the pod's readiness.
        let cs = conditions(
            None,
            &[side.clone()],
            &[true],
            &[running("a", true)],
            "Running",
            "t",
        );
        let ready = cs.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [log]")
        );
        // Restarting after the app started, it does not undo the initialization; stopped
        // with 143 once the app succeeded, the pod Succeeded.
        let crashed = crashlooping("log");
        assert!(initialized(&[crashed], &[true], &[running("a", true)]));
        assert_eq!(
            phase("Never", &[exited("log", 143)], &[true], &[exited("a", 0)]),
            "Succeeded"
        );
        // A failed sidecar never fails a Never pod by itself.
        assert_eq!(
            phase("Never", &[exited("log", 1)], &[true], &[creating("a")]),
            "Pending"
        );
    }

    #[test]
    fn conditions_keep_their_transition_times() {
        let c1 = conditions(None, &[], &[], &[running("a", false)], "Running", "t1");
        let ready = |cs: &[Condition]| cs.iter().find(|c| c.type_ == "Ready").unwrap().clone();
        assert_eq!(ready(&c1).status, "False");
        assert_eq!(
            ready(&c1).message.as_deref(),
            Some("containers with unready status: [a]")
        );
        let prev = PodStatus {
            conditions: c1,
            ..Default::default()
        };
        let c2 = conditions(
            Some(&prev),
            &[],
            &[],
            &[running("a", false)],
            "Running",
            "t2",
        );
        assert_eq!(ready(&c2).last_transition_time.as_deref(), Some("t1"));
        let c3 = conditions(
            Some(&prev),
            &[],
            &[],
            &[running("a", true)],
            "Running",
            "t3",
        );
        assert_eq!(ready(&c3).status, "True");
        assert_eq!(ready(&c3).last_transition_time.as_deref(), Some("t3"));
        let init = conditions(
            None,
            &[running("i", false)],
            &[false],
            &[creating("a")],
            "Pending",
            "t",
        );
        let i = init.iter().find(|c| c.type_ == "Initialized").unwrap();
        assert_eq!(i.status, "False");
        assert_eq!(
            i.message.as_deref(),
            Some("containers with incomplete status: [i]")
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let base = Duration::from_secs(10);
        let mut d = None;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let next = backoff(base, d);
            seen.push(next.as_secs());
            d = Some(next);
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
