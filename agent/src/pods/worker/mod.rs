//! One worker per pod, level-triggered: every wake-up (a new spec, a container exit, a
//! probe result, a backoff timer) compares what runs with what should and acts: create
//! the sandbox, run init containers in order, start containers, restart them with the
//! kubelet's backoff, stop them gracefully when the pod is deleted. Then it publishes the
//! pod's status.

use super::plan::{self, AfterKill, Seen, Step};
use super::podspec::{self, Sources};
use super::probe;
use super::status;
use crate::state::{Agent, Desired, PodEntry, PodView};
use crate::util::blocking;
use skiff_api::pod::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodIp, PodStatus,
};
use skiff_api::wire::Request;
use skiff_api::{Kind, ObjectKey};
use skiff_images::ImageRecord;
use skiff_runtime::{ContainerState as RtState, ContainerStatus as RtStatus, ExitInfo};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

mod hooks;
mod image;
mod report;
mod sandbox;
mod teardown;
mod tokens;

/// Labels the agent puts on its containers.
pub const LABEL_UID: &str = "skiff.pod.uid";
const LABEL_NAME: &str = "skiff.container.name";
const LABEL_ATTEMPT: &str = "skiff.container.attempt";
const LABEL_HASH: &str = "skiff.container.hash";

/// How long a worker sleeps when nothing wakes it (a safety net: exits and probes wake it).
const RESYNC: Duration = Duration::from_secs(60);

/// The runtime id of a container attempt.
pub fn container_id(uid: &str, name: &str, attempt: u32) -> String {
    format!("{uid}.{name}.{attempt}")
}

/// FNV-1a of the container's spec: a change (a new image) restarts the container.
fn spec_hash(c: &Container) -> String {
    let bytes = serde_json::to_vec(c).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// RFC 3339 to the second, as Kubernetes writes times.
fn seconds(ts: &str) -> String {
    if ts.len() >= 19 {
        format!("{}Z", &ts[..19])
    } else {
        ts.to_string()
    }
}

fn now_ts() -> String {
    skiff_api::util::rfc3339(crate::util::now_secs())
}

#[derive(Default)]
struct CState {
    /// (attempt, runtime id), oldest first.
    attempts: Vec<(u32, String)>,
    /// How the attempt before the newest ended (read once, when it became the previous).
    previous: Option<RtStatus>,
    /// The restart delay in force, and when the next start may happen.
    backoff: Option<Duration>,
    not_before: Option<Instant>,
    /// Why the container is waiting, when the runtime state does not say (image pull,
    /// config errors).
    waiting: Option<(String, String)>,
    image_id: Option<String>,
    probes: Option<probe::Handle>,
    /// The id whose exit is being watched.
    exit_watch: Option<(String, tokio::task::JoinHandle<()>)>,
    /// The pull failed: the next failure shows ImagePullBackOff.
    pull_failed: bool,
}

impl Drop for CState {
    fn drop(&mut self) {
        if let Some((_, h)) = self.exit_watch.take() {
            h.abort();
        }
    }
}

struct Worker {
    agent: Arc<Agent>,
    uid: String,
    rx: watch::Receiver<Desired>,
    wake_tx: mpsc::UnboundedSender<()>,
    wake_rx: mpsc::UnboundedReceiver<()>,
    view: Arc<Mutex<PodView>>,
    sandbox_ready: bool,
    /// The sandbox was found at start (after an agent restart), not created.
    adopted: bool,
    /// The pod's network is set up.
    net_ready: bool,
    start_time: Option<String>,
    /// When the pod became active here, on the monotonic clock (from `start_time` once,
    /// so a wall-clock jump moves no deadline).
    active_since: Option<Instant>,
    /// The pod ran past its activeDeadlineSeconds: it is Failed, nothing starts again.
    deadline_exceeded: bool,
    files: Vec<podspec::ProjectedVolume>,
    cs: HashMap<String, CState>,
    /// Per container, the first attempt in the current sandbox (set when a broken sandbox
    /// is made anew: earlier attempts ran in the old one).
    first_in_sandbox: HashMap<String, u32>,
    /// Containers already stopped for the pod's deletion.
    stopped: bool,
    /// ServiceAccount tokens for the pod's projected volumes, by `podspec::token_key`.
    tokens: HashMap<String, tokens::Held>,
}

/// Starts the worker of a pod. `existing` are the runtime's containers of this pod (after an
/// agent restart: adopted, not restarted).
pub fn spawn(
    agent: Arc<Agent>,
    desired: Desired,
    existing: &[RtStatus],
    sandbox_exists: bool,
) -> PodEntry {
    let pod = desired.pod.clone();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let (tx, rx) = watch::channel(desired);
    let (wake_tx, wake_rx) = mpsc::unbounded_channel();
    let mut cs: HashMap<String, CState> = HashMap::new();
    for c in existing {
        let (Some(name), Some(attempt)) = (
            c.labels.get(LABEL_NAME),
            c.labels
                .get(LABEL_ATTEMPT)
                .and_then(|a| a.parse::<u32>().ok()),
        ) else {
            continue;
        };
        cs.entry(name.clone())
            .or_default()
            .attempts
            .push((attempt, c.id.clone()));
    }
    for s in cs.values_mut() {
        s.attempts.sort();
        let prev = s.attempts.iter().rev().nth(1).map(|(_, id)| id);
        s.previous = prev.and_then(|p| existing.iter().find(|c| c.id == *p).cloned());
    }
    let view = Arc::new(Mutex::new(PodView::default()));
    let w = Worker {
        agent,
        uid,
        rx,
        wake_tx,
        wake_rx,
        view: view.clone(),
        sandbox_ready: sandbox_exists,
        adopted: sandbox_exists,
        net_ready: false,
        start_time: None,
        active_since: None,
        deadline_exceeded: false,
        files: Vec::new(),
        cs,
        first_in_sandbox: HashMap::new(),
        stopped: false,
        tokens: HashMap::new(),
    };
    w.update_view(&pod);
    tokio::spawn(w.run());
    PodEntry {
        namespace: pod.metadata.namespace().to_string(),
        name: pod.metadata.name().to_string(),
        desired: tx,
        view,
    }
}

impl Worker {
    fn update_view(&self, pod: &Pod) {
        let mut v = self.view.lock().unwrap();
        v.order = pod
            .spec
            .init_containers
            .iter()
            .chain(&pod.spec.containers)
            .map(|c| c.name.clone())
            .collect();
        v.first_app = pod.spec.containers.first().map(|c| c.name.clone());
        let all = || pod.spec.init_containers.iter().chain(&pod.spec.containers);
        v.stdin = all()
            .filter(|c| c.stdin == Some(true))
            .map(|c| c.name.clone())
            .collect();
        v.tty = all()
            .filter(|c| c.tty == Some(true))
            .map(|c| c.name.clone())
            .collect();
        v.attempts = self
            .cs
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    s.attempts.iter().map(|(_, id)| id.clone()).collect(),
                )
            })
            .collect();
        v.netns =
            (pod.spec.host_network != Some(true)).then(|| self.agent.rt.sandbox_netns(&self.uid));
    }

    async fn run(mut self) {
        loop {
            let d = self.rx.borrow_and_update().clone();
            let next = if d.gone || d.pod.metadata.deletion_timestamp.is_some() {
                match self.terminate(&d).await {
                    true => break,
                    false => Some(Instant::now() + Duration::from_secs(5)),
                }
            } else {
                self.sync(&d).await
            };
            self.update_view(&d.pod);
            let sleep = next
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(RESYNC)
                .min(RESYNC);
            tokio::select! {
                r = self.rx.changed() => if r.is_err() { break },
                _ = self.wake_rx.recv() => {
                    // Several wake-ups at once make one pass.
                    while self.wake_rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        self.agent.pods.lock().unwrap().remove(&self.uid);
    }

    /// The pod's last status: the one waiting to be sent, what the coordinator holds, or
    /// what the pod object carries.
    fn last_status(&self, pod: &Pod) -> Option<PodStatus> {
        self.agent
            .status
            .latest(&self.uid)
            .or_else(|| pod.status.clone())
    }

    fn host_ip(&self) -> String {
        self.agent.host_ip.lock().unwrap().clone()
    }

    /// The pod's IP: the node's with host networking, else its lease on the pod network.
    fn pod_ip(&self, pod: &Pod) -> Option<String> {
        if pod.spec.host_network == Some(true) {
            return Some(self.host_ip());
        }
        let net = self.agent.net()?;
        net.ip_of(&self.uid).map(|ip| ip.to_string())
    }

    async fn sync(&mut self, d: &Desired) -> Option<Instant> {
        let pod = d.pod.clone();
        let last = self.last_status(&pod);
        if self.start_time.is_none() {
            self.start_time = Some(
                last.as_ref()
                    .and_then(|s| s.start_time.clone())
                    .unwrap_or_else(now_ts),
            );
        }
        let observed = self.observe().await;
        let broken = match self.sandbox_ready {
            true => self.sandbox_problem(&pod).await,
            false => None,
        };
        let sandbox = plan::Sandbox {
            ready: self.sandbox_ready,
            net_ready: self.net_ready,
            broken,
        };
        let base = self.agent.cfg.backoff_base;
        let seen = self.seen(&pod, &observed);
        let deadline = self.deadline(&pod, last.as_ref());
        let mut steps: VecDeque<Step> = if self.deadline_exceeded {
            plan::past_deadline(&pod, &seen).into()
        } else {
            plan::plan(&pod, sandbox, &seen, base, Instant::now()).into()
        };
        let (sources, token_due) = self.with_tokens(&pod, &d.sources).await;
        let mut next: Option<Instant> = match (deadline, token_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The pod's containers all run: a volume that cannot be brought up to date (its
        // source gone, a full disk) leaves them running, as the kubelet does (FailedMount).
        let all_running = pod.spec.containers.iter().all(|c| {
            observed
                .get(&c.name)
                .is_some_and(|st| matches!(st.state, RtState::Running))
        });
        while let Some(step) = steps.pop_front() {
            let refresh = matches!(step, Step::RefreshVolumes);
            match self.execute(&pod, &sources, last.as_ref(), step).await {
                Err((_, msg)) if refresh && all_running => {
                    self.agent.event(
                        &pod,
                        "Warning",
                        "FailedMount",
                        format!("updating the pod's volumes: {msg}"),
                    );
                    let t = Instant::now() + base;
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
                Ok(Done::Next) => {}
                Ok(Done::At(t)) => next = Some(next.map_or(t, |n: Instant| n.min(t))),
                Ok(Done::Then(more)) => {
                    for s in more.into_iter().rev() {
                        steps.push_front(s);
                    }
                }
                Err((reason, msg)) => {
                    // Without its sandbox nothing of the pod runs: every container waits.
                    for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
                        self.cs.entry(c.name.clone()).or_default().waiting =
                            Some((reason.clone(), msg.clone()));
                    }
                    self.publish(&pod, &HashMap::new());
                    return Some(Instant::now() + base);
                }
            }
        }
        let observed = self.observe().await;
        self.publish(&pod, &observed);
        next
    }

    /// The pod's activeDeadlineSeconds: when it runs out (still ahead), or, once it has,
    /// `deadline_exceeded` set (and the event written once). A pod that already ended, or
    /// was found past its deadline before an agent restart, stays as it is.
    fn deadline(&mut self, pod: &Arc<Pod>, last: Option<&PodStatus>) -> Option<Instant> {
        let now = Instant::now();
        let active_since = *self.active_since.get_or_insert_with(|| {
            let started = self
                .start_time
                .as_deref()
                .and_then(skiff_api::util::parse_rfc3339);
            let elapsed = started.map_or(0, |s| crate::util::now_secs().saturating_sub(s));
            now.checked_sub(Duration::from_secs(elapsed)).unwrap_or(now)
        });
        let phase = last.and_then(|s| s.phase.as_deref());
        if phase == Some("Failed")
            && last.and_then(|s| s.reason.as_deref()) == Some(plan::DEADLINE_REASON)
        {
            self.deadline_exceeded = true;
        }
        if self.deadline_exceeded || matches!(phase, Some("Succeeded" | "Failed")) {
            return None;
        }
        let at = plan::deadline_at(pod, active_since)?;
        if now < at {
            return Some(at);
        }
        self.deadline_exceeded = true;
        self.agent.event(
            pod,
            "Normal",
            plan::DEADLINE_REASON,
            plan::DEADLINE_MESSAGE.to_string(),
        );
        None
    }

    /// What the plan needs to know of each container: its newest attempt, back-off, exit
    /// watcher and probes' verdict.
    fn seen(&self, pod: &Pod, observed: &HashMap<String, RtStatus>) -> HashMap<String, Seen> {
        let mut seen = HashMap::new();
        for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
            let s = self.cs.get(&c.name);
            let attempt = observed.get(&c.name).map(|st| plan::Attempt {
                id: st.id.clone(),
                state: st.state.clone(),
                spec_changed: st.labels.get(LABEL_HASH) != Some(&spec_hash(c)),
                // Only a back-off can be reset by a long run: asked only then.
                running_for: s
                    .is_some_and(|s| s.backoff.is_some())
                    .then(|| st.running_for())
                    .flatten(),
            });
            let watched = match (&attempt, s.and_then(|s| s.exit_watch.as_ref())) {
                (Some(a), Some((id, _))) => *id == a.id,
                _ => false,
            };
            seen.insert(
                c.name.clone(),
                Seen {
                    attempt,
                    backoff: s.and_then(|s| s.backoff),
                    not_before: s.and_then(|s| s.not_before),
                    watched,
                    probe_failure: s
                        .and_then(|s| s.probes.as_ref())
                        .and_then(|p| p.flags.failed.lock().unwrap().clone()),
                    before_sandbox: s.and_then(|s| s.attempts.last()).is_some_and(|(n, _)| {
                        self.first_in_sandbox.get(&c.name).is_some_and(|f| n < f)
                    }),
                    started: s
                        .and_then(|s| s.probes.as_ref())
                        .is_some_and(|p| p.flags.started.load(Ordering::SeqCst)),
                },
            );
        }
        seen
    }

    /// Takes one step of the plan. `Err((reason, message))`: the sandbox or its network
    /// could not be made, and the containers wait for it.
    async fn execute(
        &mut self,
        pod: &Arc<Pod>,
        sources: &Sources,
        last: Option<&PodStatus>,
        step: Step,
    ) -> Result<Done, (String, String)> {
        match step {
            Step::CreateSandbox => self.create_sandbox(pod, sources).await?,
            Step::RecreateSandbox { reason } => {
                self.recreate_sandbox(pod, sources, reason).await?;
                // Plan again in the new sandbox.
                return Ok(Done::At(Instant::now()));
            }
            Step::RefreshVolumes => self.refresh_volumes(pod, sources).await?,
            Step::AttachNetwork => self.attach_network(pod).await?,
            Step::Watch { container, id } => {
                let Some(c) = spec_of(pod, &container) else {
                    return Ok(Done::Next);
                };
                self.watch_container(pod, c, &id);
                // Readiness of an adopted container starts as the pod's status last said.
                let was = last
                    .and_then(|s| s.container_statuses.iter().find(|x| x.name == container))
                    .filter(|x| x.container_id.as_deref() == Some(&format!("skiff://{id}")));
                if let (Some(was), Some(p)) =
                    (was, self.cs.get(&container).and_then(|s| s.probes.as_ref()))
                {
                    if was.started == Some(true) {
                        p.flags.started.store(true, Ordering::SeqCst);
                    }
                    if was.ready == Some(true) {
                        p.flags.ready.store(true, Ordering::SeqCst);
                    }
                }
            }
            Step::Start { container } => {
                let Some(c) = spec_of(pod, &container) else {
                    return Ok(Done::Next);
                };
                if let Some(s) = self.cs.get_mut(&container) {
                    s.not_before = None;
                }
                if let Some(t) = self.start(pod, c, sources).await {
                    return Ok(Done::At(t));
                }
            }
            Step::DropProbes { container } => {
                if let Some(s) = self.cs.get_mut(&container) {
                    s.probes = None;
                }
            }
            Step::BackOff {
                container,
                delay,
                oom_killed,
            } => {
                let s = self.cs.entry(container.clone()).or_default();
                s.backoff = Some(delay);
                s.not_before = Some(Instant::now() + delay);
                if oom_killed {
                    self.agent.event(
                        pod,
                        "Warning",
                        "OOMKilling",
                        format!("Memory cgroup out of memory: killed container {container}"),
                    );
                }
                self.agent.event(
                    pod,
                    "Warning",
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {container} in pod {}",
                        pod.metadata.name()
                    ),
                );
            }
            Step::Kill {
                container,
                id,
                grace,
                reason,
                then,
            } => return Ok(self.kill(pod, container, id, grace, reason, then).await),
            Step::ResetBackoff { container } => {
                if let Some(s) = self.cs.get_mut(&container) {
                    s.backoff = None;
                }
            }
            Step::ClearWaiting { container } => {
                if let Some(s) = self.cs.get_mut(&container) {
                    s.waiting = None;
                }
            }
            Step::Recheck(t) => return Ok(Done::At(t)),
        }
        Ok(Done::Next)
    }

    /// Stops a running attempt gracefully, then replaces it or restarts it through its
    /// back-off, as the plan said.
    async fn kill(
        &mut self,
        pod: &Arc<Pod>,
        container: String,
        id: String,
        grace: Duration,
        reason: String,
        then: AfterKill,
    ) -> Done {
        let Some(c) = spec_of(pod, &container) else {
            return Done::Next;
        };
        self.agent.event(pod, "Normal", "Killing", reason);
        self.stop_container(pod, c, &id, grace).await;
        let observed = self.observe().await;
        let Some(st) = observed.get(&container) else {
            return Done::Next;
        };
        Done::Then(match then {
            AfterKill::Leave => Vec::new(),
            AfterKill::Replace => {
                self.forget_backoff(&container);
                vec![Step::Start { container }]
            }
            AfterKill::Restart => {
                let seen = self
                    .seen(pod, &observed)
                    .remove(&container)
                    .unwrap_or_default();
                let exit = plan::exit_of(&st.state);
                let base = self.agent.cfg.backoff_base;
                plan::restart(&container, &seen, &exit, base, Instant::now())
            }
        })
    }

    fn forget_backoff(&mut self, name: &str) {
        if let Some(s) = self.cs.get_mut(name) {
            s.backoff = None;
            s.not_before = None;
        }
    }

    /// The newest attempt of each container as the runtime sees it.
    async fn observe(&self) -> HashMap<String, RtStatus> {
        let ids: Vec<(String, String)> = self
            .cs
            .iter()
            .filter_map(|(n, s)| Some((n.clone(), s.attempts.last()?.1.clone())))
            .collect();
        let rt = self.agent.rt.clone();
        tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .filter_map(|(n, id)| Some((n, rt.status(&id).ok()?)))
                .collect()
        })
        .await
        .unwrap_or_default()
    }

    /// Creates and starts the next attempt of a container; returns when to retry after a
    /// failure.
    async fn start(&mut self, pod: &Arc<Pod>, c: &Container, sources: &Sources) -> Option<Instant> {
        let base = self.agent.cfg.backoff_base;
        let rec = match self.image(pod, c, sources).await {
            Ok(r) => r,
            Err((reason, msg)) => {
                let s = self.cs.entry(c.name.clone()).or_default();
                let reason = if s.pull_failed && reason == "ErrImagePull" {
                    "ImagePullBackOff".to_string()
                } else {
                    reason
                };
                s.pull_failed = true;
                s.waiting = Some((reason, msg));
                let delay = status::backoff(base, s.backoff);
                s.backoff = Some(delay);
                let t = Instant::now() + delay;
                s.not_before = Some(t);
                return Some(t);
            }
        };
        let host_ip = self.host_ip();
        let pod_ip = self.pod_ip(pod).unwrap_or_default();
        let s = self.cs.entry(c.name.clone()).or_default();
        s.pull_failed = false;
        s.image_id = Some(format!("{}@{}", rec.name, rec.manifest));
        let logs = self.agent.cfg.data_dir.join("logs");
        let attempt = s
            .attempts
            .last()
            .map(|(a, _)| a + 1)
            .max(podspec::last_logged_attempt(&logs, pod, &c.name).map(|a| a + 1))
            .unwrap_or(0);
        let id = container_id(&self.uid, &c.name, attempt);
        let mut labels = BTreeMap::new();
        labels.insert(LABEL_UID.to_string(), self.uid.clone());
        labels.insert(LABEL_NAME.to_string(), c.name.clone());
        labels.insert(LABEL_ATTEMPT.to_string(), attempt.to_string());
        labels.insert(LABEL_HASH.to_string(), spec_hash(c));
        let log = podspec::log_path(&logs, pod, &c.name, attempt);
        let cfg = match podspec::container(pod, c, sources, &host_ip, &pod_ip, log, labels) {
            Ok(cfg) => cfg,
            Err(e) => {
                self.agent
                    .event(pod, "Warning", "Failed", format!("Error: {e}"));
                s.waiting = Some(("CreateContainerConfigError".into(), e.0));
                return Some(Instant::now() + base);
            }
        };
        s.waiting = None;
        // Keep the previous attempt (for `logs --previous`); older ones go, logs too.
        let old: Vec<(String, std::path::PathBuf)> = if s.attempts.len() >= 2 {
            s.attempts
                .drain(..s.attempts.len() - 1)
                .map(|(a, id)| (id, podspec::log_path(&logs, pod, &c.name, a)))
                .collect()
        } else {
            Vec::new()
        };
        let prev_id = s.attempts.last().map(|(_, id)| id.clone());
        s.attempts.push((attempt, id.clone()));
        let rt = self.agent.rt.clone();
        let images = self.agent.images.clone();
        let uid = self.uid.clone();
        let cid = id.clone();
        let result = blocking(move || {
            for (o, log) in old {
                let _ = rt.remove_container(&o);
                let _ = images.remove_rootfs(&o);
                let _ = std::fs::remove_file(log);
            }
            // The attempt that now becomes the previous one ended: read its end once.
            let prev = prev_id.and_then(|p| rt.status(&p).ok());
            let started = start_attempt(&rt, &images, &rec, &uid, &cid, &cfg);
            Ok((prev, started.map_err(|e| e.to_string())))
        })
        .await
        .and_then(|(prev, started)| {
            self.cs.get_mut(&c.name).expect("present").previous = prev;
            started
        });
        if let Err(e) = result {
            self.agent
                .event(pod, "Warning", "Failed", format!("Error: {e}"));
            let s = self.cs.get_mut(&c.name).expect("present");
            s.waiting = Some(("RunContainerError".into(), e));
            let delay = status::backoff(base, s.backoff);
            s.backoff = Some(delay);
            s.not_before = Some(Instant::now() + delay);
            return Some(Instant::now() + delay);
        }
        self.agent.event(
            pod,
            "Normal",
            "Created",
            format!("Created container {}", c.name),
        );
        self.agent.event(
            pod,
            "Normal",
            "Started",
            format!("Started container {}", c.name),
        );
        self.post_start(pod, c, &id).await;
        self.watch_container(pod, c, &id);
        None
    }

    /// Where probes and hooks of a container attempt go: its pod's network namespace and
    /// address (loopback until the pod has one).
    fn target(&self, pod: &Pod, c: &Container, id: &str) -> probe::Target {
        probe::Target {
            rt: self.agent.rt.clone(),
            id: id.to_string(),
            netns: (pod.spec.host_network != Some(true))
                .then(|| self.agent.rt.sandbox_netns(&self.uid)),
            pod_ip: self
                .pod_ip(pod)
                .and_then(|ip| ip.parse().ok())
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            ports: c.ports.clone(),
        }
    }

    /// Exit watcher and probes for a running attempt (plain init containers have no
    /// probes; sidecars have all three).
    fn watch_container(&mut self, pod: &Arc<Pod>, c: &Container, id: &str) {
        let inits = &pod.spec.init_containers;
        let is_init = inits.iter().any(|i| i.name == c.name && !i.is_sidecar());
        let target = self.target(pod, c, id);
        let wake_probe = self.wake_tx.clone();
        let s = self.cs.entry(c.name.clone()).or_default();
        if s.exit_watch.as_ref().is_some_and(|(w, _)| w == id) {
            return;
        }
        let rt = self.agent.rt.clone();
        let wake = self.wake_tx.clone();
        let cid = id.to_string();
        let h = tokio::spawn(async move {
            let fd = {
                let rt = rt.clone();
                let cid = cid.clone();
                blocking(move || rt.exit_fd(&cid).map_err(|e| e.to_string())).await
            };
            if let Ok(fd) = fd {
                let _ = skiff_runtime::exited(fd).await;
            }
            let _ = wake.send(());
        });
        if let Some((_, old)) = s.exit_watch.replace((id.to_string(), h)) {
            old.abort();
        }
        if is_init {
            s.probes = None;
            return;
        }
        let agent = self.agent.clone();
        let p = pod.clone();
        let report: probe::Report = Arc::new(move |reason: &str, msg: String| {
            agent.event(&p, "Warning", reason, msg);
        });
        s.probes = Some(probe::start(c, target, wake_probe, report));
    }
}

/// Creates and starts one container attempt on a fresh root filesystem (blocking).
fn start_attempt(
    rt: &skiff_runtime::Runtime,
    images: &skiff_images::ImageStore,
    rec: &ImageRecord,
    sandbox: &str,
    id: &str,
    cfg: &skiff_runtime::ContainerConfig,
) -> Result<(), crate::error::Error> {
    let image = crate::ops::defaults(images, rec)?;
    let rootfs = images.prepare_rootfs(id, rec)?;
    rt.create_container(sandbox, id, cfg, &image, &rootfs.path)?;
    rt.start_container(id)?;
    Ok(())
}

/// A container of the pod by name (init containers first).
fn spec_of<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    pod.spec
        .init_containers
        .iter()
        .chain(&pod.spec.containers)
        .find(|c| c.name == name)
}

fn config_err(e: podspec::ConfigError) -> (String, String) {
    ("CreateContainerConfigError".into(), e.0)
}

/// What a step left for the worker.
enum Done {
    /// Go on with the next step.
    Next,
    /// Go on, and look again at this time.
    At(Instant),
    /// Take these steps first.
    Then(Vec<Step>),
}
