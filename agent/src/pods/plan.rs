//! What a pod's worker does next, decided without I/O: [`plan`] takes the pod, what the
//! worker last observed of its sandbox and containers, each container's back-off and the
//! time, and returns the [`Step`]s to take, in order. The worker (`worker.rs`) executes
//! them against the runtime and image store; every decision about restarts, init order,
//! back-off, probe verdicts and graceful stops is here, where a unit test reaches it
//! without root.
//!
//! The rules are the kubelet's (`computePodActions`):
//! - the sandbox and its network come first; nothing starts without them;
//! - init containers run one at a time, in order, each to a zero exit; one that fails is
//!   retried with back-off unless the pod's restartPolicy is `Never`;
//! - a sidecar (an init container with `restartPolicy: Always`) starts in its turn, and the
//!   next init container waits only until it has started (its startup probe passed); it
//!   runs beside the app containers, is probed and restarted whatever the pod's policy, and
//!   once the app containers are done for good it stops, last sidecar first;
//! - app containers start once every init container has succeeded; an exited one starts
//!   again by policy (`Always`; `OnFailure` on a non-zero exit), after its back-off;
//! - a running container whose liveness or startup probe failed, or whose definition
//!   changed, is stopped gracefully: a changed one starts again at once with its back-off
//!   forgotten, a failed one goes through its back-off;
//! - a container that ran long enough (60 × the back-off base) has its back-off reset;
//! - a sandbox that broke (its namespaces gone after a power cut, its network torn down
//!   under it) is not left to crash-loop: whatever still runs in it is stopped, the
//!   sandbox is made anew (`SandboxChanged`), and every container starts again in it, init
//!   containers first, with no back-off; unless the pod's restartPolicy is `Never` and a
//!   container already ran, when the pod ends as it is.

use skiff_api::pod::Pod;
use skiff_runtime::{ContainerState as RtState, ExitInfo};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The sandbox as the worker knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// The sandbox exists (created by this worker, or found at start).
    pub ready: bool,
    /// The pod's network is set up (always true in effect with host networking).
    pub net_ready: bool,
    /// It exists but is not whole: why (a namespace no longer held, the veth gone...).
    pub broken: Option<String>,
}

/// The newest attempt of a container as the runtime reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// The runtime's id of the attempt.
    pub id: String,
    pub state: RtState,
    /// The attempt was started from another definition of the container.
    pub spec_changed: bool,
    /// How long it has been running, when it is.
    pub running_for: Option<Duration>,
}

/// What the worker knows of one container when it plans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    /// The newest attempt, if there is one.
    pub attempt: Option<Attempt>,
    /// The restart delay in force.
    pub backoff: Option<Duration>,
    /// Nothing starts this container before then (a restart back-off, a failed pull).
    pub not_before: Option<Instant>,
    /// An exit watcher follows the newest attempt.
    pub watched: bool,
    /// A liveness or startup probe failed: the message, and the probe's own grace period.
    pub probe_failure: Option<(String, Option<i64>)>,
    /// The newest attempt ran in a sandbox since replaced: in this one, the container has
    /// not run yet.
    pub before_sandbox: bool,
    /// Its startup probe passed (or it has none) since the newest attempt started.
    pub started: bool,
}

impl Seen {
    /// The newest attempt in the current sandbox.
    fn current(&self) -> Option<&Attempt> {
        self.attempt.as_ref().filter(|_| !self.before_sandbox)
    }
}

/// What happens to a container once it was stopped by a [`Step::Kill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterKill {
    /// Its definition changed: the new one starts at once, back-off forgotten.
    Replace,
    /// A probe failed: it restarts through its back-off ([`restart`]).
    Restart,
    /// Its sandbox is being replaced: nothing follows here.
    Leave,
}

/// One thing for the worker to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Create the pod's sandbox (namespaces, volumes, hostname, DNS).
    CreateSandbox,
    /// The sandbox broke (`reason`): make it anew; what ran in it counts as history.
    RecreateSandbox { reason: String },
    /// Bring the ConfigMap and Secret volumes in line with their sources.
    RefreshVolumes,
    /// Give the pod its address on the pod network (or keep an adopted one).
    AttachNetwork,
    /// Follow a running attempt that nothing watches yet (found after an agent restart):
    /// its exit and its probes.
    Watch { container: String, id: String },
    /// Create and start the container's next attempt now.
    Start { container: String },
    /// The container exited and is to run again: stop its probes.
    DropProbes { container: String },
    /// Its restart back-off begins: nothing starts it for `delay`.
    BackOff {
        container: String,
        delay: Duration,
        oom_killed: bool,
    },
    /// Stop a running attempt gracefully (preStop hook, stop signal, SIGKILL after
    /// `grace`), then go on as `then` says.
    Kill {
        container: String,
        id: String,
        grace: Duration,
        reason: String,
        then: AfterKill,
    },
    /// It ran long enough: its back-off starts from the base again.
    ResetBackoff { container: String },
    /// It runs: whatever it waited for is over.
    ClearWaiting { container: String },
    /// Nothing more to do now; look again at this time.
    Recheck(Instant),
}

/// The pod's restart policy as the kubelet reads it (`Always` when unset).
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec.restart_policy.as_deref().unwrap_or("Always")
}

/// The grace period: the deletion's (when deleting), else the pod's
/// terminationGracePeriodSeconds (30 s by default).
pub fn grace_period(pod: &Pod, deleting: bool) -> Duration {
    let secs = if deleting {
        pod.metadata.deletion_grace_period_seconds
    } else {
        None
    }
    .or(pod.spec.termination_grace_period_seconds)
    .unwrap_or(30)
    .max(0);
    Duration::from_secs(secs as u64)
}

/// How an attempt that is not running ended (an unknown state counts as exit 255).
pub fn exit_of(state: &RtState) -> ExitInfo {
    match state {
        RtState::Exited(e) => e.clone(),
        _ => ExitInfo {
            exit_code: 255,
            signal: None,
            oom_killed: false,
            finished_at: String::new(),
        },
    }
}

/// The steps that bring a live (not deleted) pod closer to its spec.
pub fn plan(
    pod: &Pod,
    sandbox: Sandbox,
    seen: &HashMap<String, Seen>,
    base: Duration,
    now: Instant,
) -> Vec<Step> {
    if let (true, Some(why)) = (sandbox.ready, &sandbox.broken) {
        return sandbox_changed(pod, seen, why);
    }
    let mut steps = Vec::new();
    let host_network = pod.spec.host_network == Some(true);
    if sandbox.ready {
        steps.push(Step::RefreshVolumes);
    } else {
        steps.push(Step::CreateSandbox);
    }
    if !host_network && (!sandbox.ready || !sandbox.net_ready) {
        steps.push(Step::AttachNetwork);
    }
    let none = Seen::default();
    let seen_of = |name: &str| seen.get(name).unwrap_or(&none);
    // Running attempts nobody follows yet get their exit watcher and probes first.
    for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
        let s = seen_of(&c.name);
        if let Some(a) = s.current() {
            if matches!(a.state, RtState::Running) && !s.watched {
                steps.push(Step::Watch {
                    container: c.name.clone(),
                    id: a.id.clone(),
                });
            }
        }
    }
    let policy = restart_policy(pod);
    // Once an app container ran in this sandbox the pod is initialized: a sidecar that
    // stops is restarted beside the apps, and nothing waits for it again.
    let initialized = pod
        .spec
        .containers
        .iter()
        .any(|c| seen_of(&c.name).current().is_some());
    let over = pod_over(pod, seen, initialized);
    // Init containers, in order: each plain one to completion, each sidecar until it has
    // started (its startup probe passed).
    let mut init_done = true;
    for c in &pod.spec.init_containers {
        let s = seen_of(&c.name);
        if c.is_sidecar() {
            if over {
                continue;
            }
            steps.extend(keep_running(pod, c, s, |_| true, base, now));
            let started = s.started && s.current().is_some_and(|a| a.state == RtState::Running);
            if started || initialized {
                continue;
            }
        } else {
            match s.current().map(|a| &a.state) {
                Some(RtState::Exited(e)) if e.exit_code == 0 => continue,
                Some(RtState::Running) | Some(RtState::Created) => {}
                None => steps.extend(start(&c.name, s, now)),
                Some(state) => {
                    if policy != "Never" {
                        steps.extend(restart(&c.name, s, &exit_of(state), base, now));
                    }
                }
            }
        }
        init_done = false;
        break;
    }
    if init_done {
        for c in &pod.spec.containers {
            let again = |exit: &ExitInfo| match policy {
                "Always" => true,
                "OnFailure" => exit.exit_code != 0,
                _ => false,
            };
            steps.extend(keep_running(pod, c, seen_of(&c.name), again, base, now));
        }
    }
    if over {
        // The pod is done: its sidecars stop, last first, and stay stopped.
        for c in pod
            .spec
            .init_containers
            .iter()
            .rev()
            .filter(|c| c.is_sidecar())
        {
            let s = seen_of(&c.name);
            if let Some(a) = s.current().filter(|a| is_live(&a.state)) {
                steps.push(Step::Kill {
                    container: c.name.clone(),
                    id: a.id.clone(),
                    grace: grace_period(pod, false),
                    reason: format!(
                        "Stopping container {}: its pod's containers have completed",
                        c.name
                    ),
                    then: AfterKill::Leave,
                });
            }
        }
    }
    steps
}

fn is_live(state: &RtState) -> bool {
    matches!(state, RtState::Running | RtState::Created)
}

/// Whether the pod's own containers are done for good (its sidecars then stop): every app
/// container exited and its restartPolicy restarts none of them, or a plain init
/// container failed under restartPolicy `Never`.
fn pod_over(pod: &Pod, seen: &HashMap<String, Seen>, initialized: bool) -> bool {
    let policy = restart_policy(pod);
    let exit = |name: &str| {
        let a = seen.get(name)?.current()?;
        (!is_live(&a.state)).then(|| exit_of(&a.state))
    };
    if policy == "Never"
        && pod
            .spec
            .init_containers
            .iter()
            .filter(|c| !c.is_sidecar())
            .any(|c| exit(&c.name).is_some_and(|e| e.exit_code != 0))
    {
        return true;
    }
    initialized
        && policy != "Always"
        && pod.spec.containers.iter().all(|c| match exit(&c.name) {
            Some(e) => policy == "Never" || e.exit_code == 0,
            None => false,
        })
}

/// A container that should be running (an app container, or a sidecar): started when it
/// has no attempt; stopped when a probe failed or its definition changed; restarted
/// through its back-off when it exited and `again` says so.
fn keep_running(
    pod: &Pod,
    c: &skiff_api::pod::Container,
    s: &Seen,
    again: impl Fn(&ExitInfo) -> bool,
    base: Duration,
    now: Instant,
) -> Vec<Step> {
    let Some(a) = s.current() else {
        return start(&c.name, s, now);
    };
    let mut steps = Vec::new();
    match &a.state {
        RtState::Running | RtState::Created => {
            if s.probe_failure.is_some() || a.spec_changed {
                let (reason, probe_grace) = s.probe_failure.clone().unwrap_or_else(|| {
                    let m = format!("Container {} definition changed, will be restarted", c.name);
                    (m, None)
                });
                let grace = match probe_grace {
                    Some(g) => Duration::from_secs(g.max(0) as u64),
                    None => grace_period(pod, false),
                };
                steps.push(Step::Kill {
                    container: c.name.clone(),
                    id: a.id.clone(),
                    grace,
                    reason,
                    then: if a.spec_changed {
                        AfterKill::Replace
                    } else {
                        AfterKill::Restart
                    },
                });
            } else {
                if s.backoff.is_some() && a.running_for.is_some_and(|r| r >= base * 60) {
                    steps.push(Step::ResetBackoff {
                        container: c.name.clone(),
                    });
                }
                steps.push(Step::ClearWaiting {
                    container: c.name.clone(),
                });
            }
        }
        state => {
            let exit = exit_of(state);
            if again(&exit) {
                steps.extend(restart(&c.name, s, &exit, base, now));
            }
        }
    }
    steps
}

/// The kubelet's answer to a sandbox that broke (`computePodActions` when the sandbox
/// changed): stop what still runs in it, then make it anew, unless the pod's restartPolicy
/// is `Never` and a container already ran in it (the pod then ends as it is).
fn sandbox_changed(pod: &Pod, seen: &HashMap<String, Seen>, why: &str) -> Vec<Step> {
    let mut steps = stop_all(pod, seen, &format!("its pod's sandbox is broken ({why})"));
    let ran = seen.values().any(|s| s.current().is_some());
    if restart_policy(pod) != "Never" || !ran {
        steps.push(Step::RecreateSandbox {
            reason: why.to_string(),
        });
    }
    steps
}

/// A container with no attempt yet (or whose definition was replaced): start it, unless a
/// failed pull or create still waits out its back-off, whatever else woke the worker.
pub fn start(container: &str, s: &Seen, now: Instant) -> Vec<Step> {
    match s.not_before {
        Some(t) if now < t => vec![Step::Recheck(t)],
        _ => vec![Step::Start {
            container: container.to_string(),
        }],
    }
}

/// A container that exited and should run again: its probes stop, its back-off begins
/// (doubling from `base` up to 30 × `base`) unless it already did, and it starts once the
/// back-off has passed.
pub fn restart(
    container: &str,
    s: &Seen,
    exit: &ExitInfo,
    base: Duration,
    now: Instant,
) -> Vec<Step> {
    let mut steps = vec![Step::DropProbes {
        container: container.to_string(),
    }];
    let not_before = match s.not_before {
        Some(t) => t,
        None => {
            let delay = super::status::backoff(base, s.backoff);
            steps.push(Step::BackOff {
                container: container.to_string(),
                delay,
                oom_killed: exit.oom_killed,
            });
            now + delay
        }
    };
    if now < not_before {
        steps.push(Step::Recheck(not_before));
    } else {
        steps.push(Step::Start {
            container: container.to_string(),
        });
    }
    steps
}

/// Kubernetes' reason for a pod stopped at its `activeDeadlineSeconds`.
pub const DEADLINE_REASON: &str = "DeadlineExceeded";
/// Kubernetes' message for it.
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// When the pod's `activeDeadlineSeconds` runs out, counted from when it became active on
/// the node (its `startTime`).
pub fn deadline_at(pod: &Pod, active_since: Instant) -> Option<Instant> {
    let secs = pod.spec.active_deadline_seconds?;
    Some(active_since + Duration::from_secs(secs.max(0) as u64))
}

/// A pod past its deadline (the kubelet's activeDeadlineHandler): every attempt that runs
/// stops with the pod's grace period, and nothing starts again, whatever the restart
/// policy; the pod is Failed.
pub fn past_deadline(pod: &Pod, seen: &HashMap<String, Seen>) -> Vec<Step> {
    stop_all(pod, seen, DEADLINE_MESSAGE)
}

/// Every attempt that runs stopped with the pod's grace period, nothing after (`why`
/// completes the event: `Stopping container C: why`).
fn stop_all(pod: &Pod, seen: &HashMap<String, Seen>, why: &str) -> Vec<Step> {
    teardown(pod, seen)
        .into_iter()
        .map(|(container, id)| Step::Kill {
            reason: format!("Stopping container {container}: {why}"),
            container,
            id,
            grace: grace_period(pod, false),
            then: AfterKill::Leave,
        })
        .collect()
}

/// The attempts to stop when the pod is deleted: every one that runs or was created, the
/// pod's own containers in spec order, then its sidecars last first (they stop after the
/// containers they serve).
pub fn teardown(pod: &Pod, seen: &HashMap<String, Seen>) -> Vec<(String, String)> {
    let spec = &pod.spec;
    let own = spec.init_containers.iter().filter(|c| !c.is_sidecar());
    let sidecars = spec.init_containers.iter().rev().filter(|c| c.is_sidecar());
    own.chain(&spec.containers)
        .chain(sidecars)
        .filter_map(|c| {
            let a = seen.get(&c.name)?.attempt.as_ref()?;
            is_live(&a.state).then(|| (c.name.clone(), a.id.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use skiff_api::pod::{Container, PodSpec};

    const BASE: Duration = Duration::from_secs(10);

    fn pod(init: &[&str], apps: &[&str], policy: Option<&str>) -> Pod {
        let c = |n: &&str| Container {
            name: n.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        Pod {
            spec: PodSpec {
                init_containers: init.iter().map(c).collect(),
                containers: apps.iter().map(c).collect(),
                restart_policy: policy.map(str::to_string),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn ready() -> Sandbox {
        Sandbox {
            ready: true,
            net_ready: true,
            broken: None,
        }
    }

    fn exited(code: i32) -> RtState {
        RtState::Exited(ExitInfo {
            exit_code: code,
            signal: None,
            oom_killed: false,
            finished_at: String::new(),
        })
    }

    fn with(state: RtState) -> Seen {
        Seen {
            attempt: Some(Attempt {
                id: "id".into(),
                running_for: matches!(state, RtState::Running).then_some(Duration::ZERO),
                state,
                spec_changed: false,
            }),
            watched: true,
            ..Default::default()
        }
    }

    fn seen(of: &[(&str, Seen)]) -> HashMap<String, Seen> {
        of.iter().map(|(n, s)| (n.to_string(), s.clone())).collect()
    }

    fn start(n: &str) -> Step {
        Step::Start {
            container: n.into(),
        }
    }

    /// The container steps, without the sandbox's.
    fn acts(steps: Vec<Step>) -> Vec<Step> {
        steps
            .into_iter()
            .filter(|s| !matches!(s, Step::RefreshVolumes))
            .collect()
    }

    /// `pod`, with the init containers named in `sidecars` made sidecars.
    fn with_sidecars(mut p: Pod, sidecars: &[&str]) -> Pod {
        for c in &mut p.spec.init_containers {
            if sidecars.contains(&c.name.as_str()) {
                c.restart_policy = Some("Always".into());
            }
        }
        p
    }

    fn started(mut s: Seen) -> Seen {
        s.started = true;
        s
    }

    fn kill_leave(n: &str) -> Step {
        Step::Kill {
            container: n.into(),
            id: "id".into(),
            grace: Duration::from_secs(30),
            reason: format!("Stopping container {n}: its pod's containers have completed"),
            then: AfterKill::Leave,
        }
    }

    #[test]
    fn a_sidecar_starts_in_turn_and_the_next_init_container_waits_for_its_startup() {
        let p = with_sidecars(pod(&["setup", "log", "migrate"], &["app"], None), &["log"]);
        let now = Instant::now();
        let done = with(exited(0));
        // The plain init container first, then the sidecar.
        let s = seen(&[("setup", done.clone())]);
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now)), vec![start("log")]);
        // Running but not started (a startup probe still going): nothing more starts.
        let s = seen(&[("setup", done.clone()), ("log", with(RtState::Running))]);
        assert_eq!(
            acts(plan(&p, ready(), &s, BASE, now)),
            vec![Step::ClearWaiting {
                container: "log".into()
            }]
        );
        // Started: the next init container runs beside it, then the app.
        let log = started(with(RtState::Running));
        let s = seen(&[("setup", done.clone()), ("log", log.clone())]);
        assert_eq!(
            acts(plan(&p, ready(), &s, BASE, now))[1..],
            [start("migrate")]
        );
        let s = seen(&[("setup", done.clone()), ("log", log), ("migrate", done)]);
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now))[1..], [start("app")]);
    }

    #[test]
    fn a_sidecar_restarts_whatever_the_pods_policy_and_a_failed_probe_restarts_it() {
        let p = with_sidecars(pod(&["log"], &["app"], Some("Never")), &["log"]);
        let now = Instant::now();
        // It exited after the app started: restarted through its back-off; the app runs on.
        let s = seen(&[
            ("log", with(exited(1))),
            ("app", started(with(RtState::Running))),
        ]);
        let steps = acts(plan(&p, ready(), &s, BASE, now));
        assert!(
            steps.contains(&Step::BackOff {
                container: "log".into(),
                delay: BASE,
                oom_killed: false
            }),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|s| matches!(s, Step::Start { .. })),
            "{steps:?}"
        );
        // Its liveness probe failed: stopped, then restarted through its back-off.
        let mut log = started(with(RtState::Running));
        log.probe_failure = Some(("Container log failed liveness probe".into(), None));
        let s = seen(&[("log", log), ("app", started(with(RtState::Running)))]);
        let steps = acts(plan(&p, ready(), &s, BASE, now));
        assert!(
            matches!(&steps[0], Step::Kill { container, then: AfterKill::Restart, .. } if container == "log"),
            "{steps:?}"
        );
    }

    #[test]
    fn once_the_apps_are_done_the_sidecars_stop_last_first_and_stay_stopped() {
        let p = with_sidecars(pod(&["a", "b"], &["job"], Some("OnFailure")), &["a", "b"]);
        let now = Instant::now();
        let up = || started(with(RtState::Running));
        // The app failed under OnFailure: it restarts, the sidecars keep running.
        let s = seen(&[("a", up()), ("b", up()), ("job", with(exited(1)))]);
        let steps = acts(plan(&p, ready(), &s, BASE, now));
        assert!(
            !steps.iter().any(|s| matches!(s, Step::Kill { .. })),
            "{steps:?}"
        );
        // It succeeded: the sidecars stop, b before a.
        let s = seen(&[("a", up()), ("b", up()), ("job", with(exited(0)))]);
        let kills: Vec<Step> = acts(plan(&p, ready(), &s, BASE, now))
            .into_iter()
            .filter(|s| matches!(s, Step::Kill { .. }))
            .collect();
        assert_eq!(kills, vec![kill_leave("b"), kill_leave("a")]);
        // Stopped (by SIGTERM: 143), they are not started again.
        let s = seen(&[
            ("a", with(exited(143))),
            ("b", with(exited(143))),
            ("job", with(exited(0))),
        ]);
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now)), vec![]);
        // A failed plain init container ends a Never pod: its sidecar stops too.
        let p = with_sidecars(pod(&["log", "init"], &["app"], Some("Never")), &["log"]);
        let s = seen(&[("log", up()), ("init", with(exited(2)))]);
        assert_eq!(
            acts(plan(&p, ready(), &s, BASE, now)),
            vec![kill_leave("log")]
        );
    }

    #[test]
    fn a_deleted_pod_stops_its_sidecars_after_its_containers_last_first() {
        let p = with_sidecars(pod(&["a", "init", "b"], &["x", "y"], None), &["a", "b"]);
        let up = || with(RtState::Running);
        let s = seen(&[("a", up()), ("b", up()), ("x", up()), ("y", up())]);
        let order: Vec<String> = teardown(&p, &s).into_iter().map(|(n, _)| n).collect();
        assert_eq!(order, ["x", "y", "b", "a"]);
    }

    #[test]
    fn a_new_pod_gets_its_sandbox_and_network_then_its_first_init_container() {
        let now = Instant::now();
        let p = pod(&["a", "b"], &["app"], None);
        let steps = plan(&p, Sandbox::default(), &HashMap::new(), BASE, now);
        assert_eq!(
            steps,
            vec![Step::CreateSandbox, Step::AttachNetwork, start("a")]
        );
    }

    #[test]
    fn past_its_deadline_a_pod_stops_what_runs_and_starts_nothing() {
        let mut p = pod(&[], &["app", "side", "done"], Some("Always"));
        let t0 = Instant::now();
        assert_eq!(deadline_at(&p, t0), None, "no deadline without the field");
        p.spec.active_deadline_seconds = Some(30);
        p.spec.termination_grace_period_seconds = Some(2);
        assert_eq!(deadline_at(&p, t0), Some(t0 + Duration::from_secs(30)));
        let s = seen(&[
            ("app", with(RtState::Running)),
            ("side", with(RtState::Created)),
            ("done", with(exited(1))),
        ]);
        let steps = past_deadline(&p, &s);
        let killed: Vec<_> = steps
            .iter()
            .map(|st| match st {
                Step::Kill {
                    container,
                    grace,
                    then,
                    reason,
                    ..
                } => {
                    assert_eq!(*grace, Duration::from_secs(2));
                    assert_eq!(*then, AfterKill::Leave);
                    assert!(reason.ends_with(DEADLINE_MESSAGE), "{reason}");
                    container.as_str()
                }
                other => panic!("only kills past the deadline, not {other:?}"),
            })
            .collect();
        // The exited one is not restarted although the policy is Always.
        assert_eq!(killed, ["app", "side"]);
        let all_exited = seen(&[("app", with(exited(137))), ("side", with(exited(137)))]);
        assert!(past_deadline(&p, &all_exited).is_empty());
    }

    #[test]
    fn host_network_pods_attach_no_network() {
        let mut p = pod(&[], &["app"], None);
        p.spec.host_network = Some(true);
        let steps = plan(
            &p,
            Sandbox::default(),
            &HashMap::new(),
            BASE,
            Instant::now(),
        );
        assert_eq!(steps, vec![Step::CreateSandbox, start("app")]);
    }

    #[test]
    fn a_ready_sandbox_refreshes_volumes_and_reattaches_a_lost_network() {
        let p = pod(&[], &["app"], None);
        let s = seen(&[("app", with(RtState::Running))]);
        let sb = Sandbox {
            ready: true,
            net_ready: false,
            broken: None,
        };
        let steps = plan(&p, sb, &s, BASE, Instant::now());
        assert_eq!(steps[..2], [Step::RefreshVolumes, Step::AttachNetwork]);
    }

    #[test]
    fn init_containers_run_one_at_a_time_in_order() {
        let p = pod(&["a", "b"], &["app"], None);
        let now = Instant::now();
        let s = seen(&[("a", with(exited(0)))]);
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now)), vec![start("b")]);
        // While b runs, nothing else starts.
        let s = seen(&[("a", with(exited(0))), ("b", with(RtState::Running))]);
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now)), vec![]);
        // Both done: the app starts.
        let s = seen(&[("a", with(exited(0))), ("b", with(exited(0)))]);
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now)), vec![start("app")]);
    }

    #[test]
    fn a_failed_init_container_retries_with_backoff_unless_the_policy_is_never() {
        let now = Instant::now();
        let s = seen(&[("a", with(exited(1)))]);
        let p = pod(&["a"], &["app"], Some("Never"));
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now)), vec![]);
        for policy in [None, Some("OnFailure")] {
            let p = pod(&["a"], &["app"], policy);
            assert_eq!(
                acts(plan(&p, ready(), &s, BASE, now)),
                vec![
                    Step::DropProbes {
                        container: "a".into()
                    },
                    Step::BackOff {
                        container: "a".into(),
                        delay: BASE,
                        oom_killed: false
                    },
                    Step::Recheck(now + BASE),
                ]
            );
        }
    }

    #[test]
    fn exited_app_containers_restart_by_policy() {
        let now = Instant::now();
        let cases = [
            (None, 0, true),
            (None, 1, true),
            (Some("Always"), 0, true),
            (Some("OnFailure"), 0, false),
            (Some("OnFailure"), 2, true),
            (Some("Never"), 0, false),
            (Some("Never"), 137, false),
        ];
        for (policy, code, again) in cases {
            let p = pod(&[], &["app"], policy);
            let s = seen(&[("app", with(exited(code)))]);
            let steps = acts(plan(&p, ready(), &s, BASE, now));
            let backs_off = steps.iter().any(|s| matches!(s, Step::BackOff { .. }));
            assert_eq!(backs_off, again, "{policy:?} exit {code}: {steps:?}");
        }
        // An attempt in an unknown state (its monitor was killed) counts as a failure.
        let p = pod(&[], &["app"], Some("OnFailure"));
        let s = seen(&[("app", with(RtState::Unknown))]);
        assert!(acts(plan(&p, ready(), &s, BASE, now))
            .iter()
            .any(|s| matches!(s, Step::BackOff { .. })));
    }

    #[test]
    fn the_backoff_doubles_up_to_thirty_times_the_base_and_an_oom_kill_is_said() {
        let now = Instant::now();
        let mut s = with(RtState::Exited(ExitInfo {
            exit_code: 137,
            signal: Some(9),
            oom_killed: true,
            finished_at: String::new(),
        }));
        let mut delays = Vec::new();
        for _ in 0..8 {
            let steps = restart(
                "app",
                &s,
                &exit_of(&s.attempt.as_ref().unwrap().state),
                BASE,
                now,
            );
            let Some(Step::BackOff {
                delay, oom_killed, ..
            }) = steps.get(1)
            else {
                panic!("no back-off in {steps:?}");
            };
            assert!(oom_killed);
            assert_eq!(steps[2], Step::Recheck(now + *delay));
            delays.push(delay.as_secs());
            s.backoff = Some(*delay);
        }
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn a_passed_backoff_starts_the_container_and_a_pending_one_waits() {
        let now = Instant::now();
        let p = pod(&[], &["app"], None);
        let mut s = with(exited(1));
        s.backoff = Some(BASE);
        s.not_before = Some(now + Duration::from_secs(3));
        let steps = acts(plan(&p, ready(), &seen(&[("app", s.clone())]), BASE, now));
        assert_eq!(
            steps,
            vec![
                Step::DropProbes {
                    container: "app".into()
                },
                Step::Recheck(now + Duration::from_secs(3))
            ]
        );
        s.not_before = Some(now - Duration::from_secs(1));
        let steps = acts(plan(&p, ready(), &seen(&[("app", s)]), BASE, now));
        assert_eq!(
            steps,
            vec![
                Step::DropProbes {
                    container: "app".into()
                },
                start("app")
            ]
        );
    }

    #[test]
    fn a_failed_pull_waits_out_its_backoff_whatever_wakes_the_worker() {
        let now = Instant::now();
        let p = pod(&[], &["app"], None);
        let s = Seen {
            backoff: Some(BASE),
            not_before: Some(now + BASE),
            ..Default::default()
        };
        let steps = acts(plan(&p, ready(), &seen(&[("app", s.clone())]), BASE, now));
        assert_eq!(steps, vec![Step::Recheck(now + BASE)]);
        let steps = acts(plan(&p, ready(), &seen(&[("app", s)]), BASE, now + BASE));
        assert_eq!(steps, vec![start("app")]);
    }

    #[test]
    fn a_failed_probe_kills_with_the_probes_grace_and_restarts_through_backoff() {
        let p = pod(&[], &["app"], None);
        let mut s = with(RtState::Running);
        s.probe_failure = Some(("Liveness probe failed".into(), Some(3)));
        let steps = acts(plan(
            &p,
            ready(),
            &seen(&[("app", s.clone())]),
            BASE,
            Instant::now(),
        ));
        assert_eq!(
            steps,
            vec![Step::Kill {
                container: "app".into(),
                id: "id".into(),
                grace: Duration::from_secs(3),
                reason: "Liveness probe failed".into(),
                then: AfterKill::Restart,
            }]
        );
        // Without its own grace, the pod's terminationGracePeriodSeconds (30 s default).
        s.probe_failure = Some(("Liveness probe failed".into(), None));
        let steps = acts(plan(
            &p,
            ready(),
            &seen(&[("app", s)]),
            BASE,
            Instant::now(),
        ));
        assert!(matches!(&steps[0], Step::Kill { grace, .. } if *grace == Duration::from_secs(30)));
    }

    #[test]
    fn a_changed_definition_is_replaced_with_the_pods_grace() {
        let mut p = pod(&[], &["app"], Some("Never"));
        p.spec.termination_grace_period_seconds = Some(7);
        let mut s = with(RtState::Running);
        s.attempt.as_mut().unwrap().spec_changed = true;
        let steps = acts(plan(
            &p,
            ready(),
            &seen(&[("app", s)]),
            BASE,
            Instant::now(),
        ));
        assert_eq!(
            steps,
            vec![Step::Kill {
                container: "app".into(),
                id: "id".into(),
                grace: Duration::from_secs(7),
                reason: "Container app definition changed, will be restarted".into(),
                then: AfterKill::Replace,
            }]
        );
    }

    #[test]
    fn running_long_enough_resets_the_backoff() {
        let p = pod(&[], &["app"], None);
        let mut s = with(RtState::Running);
        s.backoff = Some(BASE * 4);
        s.attempt.as_mut().unwrap().running_for = Some(BASE * 59);
        let steps = acts(plan(
            &p,
            ready(),
            &seen(&[("app", s.clone())]),
            BASE,
            Instant::now(),
        ));
        assert_eq!(
            steps,
            vec![Step::ClearWaiting {
                container: "app".into()
            }]
        );
        s.attempt.as_mut().unwrap().running_for = Some(BASE * 60);
        let steps = acts(plan(
            &p,
            ready(),
            &seen(&[("app", s)]),
            BASE,
            Instant::now(),
        ));
        assert_eq!(
            steps,
            vec![
                Step::ResetBackoff {
                    container: "app".into()
                },
                Step::ClearWaiting {
                    container: "app".into()
                }
            ]
        );
    }

    #[test]
    fn running_attempts_nobody_watches_are_adopted_first() {
        let p = pod(&["init"], &["app"], None);
        let mut app = with(RtState::Running);
        app.watched = false;
        app.attempt.as_mut().unwrap().id = "uid.app.3".into();
        let s = seen(&[("init", with(exited(0))), ("app", app)]);
        let steps = acts(plan(&p, ready(), &s, BASE, Instant::now()));
        assert_eq!(
            steps,
            vec![
                Step::Watch {
                    container: "app".into(),
                    id: "uid.app.3".into()
                },
                Step::ClearWaiting {
                    container: "app".into()
                }
            ]
        );
    }

    fn broken() -> Sandbox {
        Sandbox {
            broken: Some("its net namespace is no longer mounted".into()),
            ..ready()
        }
    }

    #[test]
    fn a_broken_sandbox_stops_what_runs_in_it_then_is_made_anew() {
        let p = pod(&["init"], &["app", "side"], None);
        let s = seen(&[
            ("init", with(exited(0))),
            ("app", with(RtState::Running)),
            ("side", with(RtState::Unknown)),
        ]);
        let steps = plan(&p, broken(), &s, BASE, Instant::now());
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert!(matches!(
            &steps[0],
            Step::Kill { container, then: AfterKill::Leave, .. } if container == "app"
        ));
        assert_eq!(
            steps[1],
            Step::RecreateSandbox {
                reason: "its net namespace is no longer mounted".into()
            }
        );
    }

    #[test]
    fn a_broken_sandbox_of_a_never_pod_that_ran_is_not_made_anew() {
        let p = pod(&[], &["app"], Some("Never"));
        let ran = seen(&[("app", with(RtState::Unknown))]);
        assert!(plan(&p, broken(), &ran, BASE, Instant::now()).is_empty());
        // One that never ran in it gets a new one.
        let steps = plan(&p, broken(), &HashMap::new(), BASE, Instant::now());
        assert!(matches!(steps[..], [Step::RecreateSandbox { .. }]));
    }

    #[test]
    fn in_a_new_sandbox_everything_starts_again_init_first_without_back_off() {
        let now = Instant::now();
        let p = pod(&["init"], &["app"], None);
        let old = |state| Seen {
            before_sandbox: true,
            backoff: Some(BASE * 4),
            ..with(state)
        };
        let s = seen(&[("init", old(exited(0))), ("app", old(RtState::Unknown))]);
        let sb = Sandbox {
            net_ready: false,
            ..ready()
        };
        assert_eq!(
            plan(&p, sb, &s, BASE, now),
            vec![Step::RefreshVolumes, Step::AttachNetwork, start("init")]
        );
        // With the init container done in the new sandbox, the app starts at once.
        let mut s = s;
        s.insert("init".into(), with(exited(0)));
        assert_eq!(acts(plan(&p, ready(), &s, BASE, now)), vec![start("app")]);
    }

    #[test]
    fn teardown_stops_what_runs_or_was_created_in_spec_order() {
        let p = pod(&["init"], &["a", "b", "c"], None);
        let mut b = with(RtState::Created);
        b.attempt.as_mut().unwrap().id = "b1".into();
        let mut c = with(RtState::Running);
        c.attempt.as_mut().unwrap().id = "c1".into();
        let s = seen(&[
            ("init", with(exited(0))),
            ("a", with(exited(1))),
            ("c", c),
            ("b", b),
        ]);
        assert_eq!(
            teardown(&p, &s),
            vec![("b".into(), "b1".into()), ("c".into(), "c1".into())]
        );
        let mut p = pod(&[], &["a"], None);
        p.spec.termination_grace_period_seconds = Some(12);
        assert_eq!(grace_period(&p, true), Duration::from_secs(12));
        p.metadata.deletion_grace_period_seconds = Some(2);
        assert_eq!(grace_period(&p, true), Duration::from_secs(2));
        assert_eq!(grace_period(&p, false), Duration::from_secs(12));
    }

    fn any_state() -> impl Strategy<Value = Option<RtState>> {
        prop_oneof![
            Just(None),
            Just(Some(RtState::Created)),
            Just(Some(RtState::Running)),
            Just(Some(RtState::Unknown)),
            (0..3i32, any::<bool>()).prop_map(|(code, oom)| Some(RtState::Exited(ExitInfo {
                exit_code: code,
                signal: None,
                oom_killed: oom,
                finished_at: String::new(),
            }))),
        ]
    }

    fn any_seen() -> impl Strategy<Value = Seen> {
        (
            any_state(),
            any::<bool>(),
            proptest::option::of(0..4u32),
            proptest::option::of(-20..20i64),
            proptest::option::of(any::<bool>()),
            (0..700u64, any::<bool>()),
        )
            .prop_map(
                |(state, changed, backoff, not_before, probe, (ran, started))| Seen {
                    attempt: state.map(|state| Attempt {
                        id: "id".into(),
                        running_for: Some(Duration::from_secs(ran)),
                        state,
                        spec_changed: changed,
                    }),
                    backoff: backoff.map(|b| BASE * 2u32.pow(b)),
                    not_before: not_before.map(|s| {
                        let origin = origin();
                        if s < 0 {
                            origin - Duration::from_secs(s.unsigned_abs())
                        } else {
                            origin + Duration::from_secs(s as u64)
                        }
                    }),
                    watched: true,
                    probe_failure: probe.map(|own| ("probe failed".into(), own.then_some(1))),
                    before_sandbox: false,
                    started,
                },
            )
    }

    /// One instant for every generated case, so `not_before` can lie either side of it.
    fn origin() -> Instant {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(|| Instant::now() + Duration::from_secs(3600))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the containers' states: nothing starts before its back-off is over, no
        /// app container starts or restarts before every init container succeeded, at most
        /// one init container is acted on, a pod with restartPolicy Never restarts nothing,
        /// and every container gets at most one start or kill.
        #[test]
        fn the_plan_keeps_the_kubelets_rules(
            n_init in 0..3usize,
            n_app in 1..4usize,
            policy in prop_oneof![Just(None), Just(Some("OnFailure")), Just(Some("Never"))],
            states in proptest::collection::vec(any_seen(), 6),
        ) {
            let names: Vec<String> = (0..n_init + n_app).map(|i| format!("c{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let p = pod(&refs[..n_init], &refs[n_init..], policy);
            let s: HashMap<String, Seen> =
                names.iter().cloned().zip(states.iter().cloned()).collect();
            let now = origin();
            let steps = plan(&p, ready(), &s, BASE, now);
            let init_ok = refs[..n_init].iter().all(|n| {
                matches!(&s[*n].attempt, Some(Attempt { state: RtState::Exited(e), .. }) if e.exit_code == 0)
            });
            let mut acted_init = std::collections::HashSet::new();
            let mut acted = HashMap::<&str, usize>::new();
            for step in &steps {
                let (name, starts) = match step {
                    Step::Start { container } => (container.as_str(), true),
                    Step::Kill { container, .. } => (container.as_str(), false),
                    Step::BackOff { container, .. } => {
                        prop_assert!(policy != Some("Never"), "Never restarts nothing, yet {container}: {steps:?}");
                        continue;
                    }
                    Step::Recheck(t) => {
                        prop_assert!(*t > now, "a recheck in the past: {steps:?}");
                        continue;
                    }
                    _ => continue,
                };
                *acted.entry(name).or_default() += 1;
                if refs[..n_init].contains(&name) {
                    acted_init.insert(name);
                } else {
                    prop_assert!(init_ok, "{name} acted on before init finished: {steps:?}");
                }
                if starts {
                    let nb = s[name].not_before;
                    prop_assert!(nb.is_none_or(|t| t <= now), "{name} started inside its back-off: {steps:?}");
                    // A container that ran before starts again only after a back-off.
                    prop_assert!(s[name].attempt.is_none() || nb.is_some(), "{name} restarted without back-off: {steps:?}");
                }
            }
            prop_assert!(acted_init.len() <= 1, "{steps:?}");
            prop_assert!(acted.values().all(|n| *n == 1), "{steps:?}");
        }
    }
}
