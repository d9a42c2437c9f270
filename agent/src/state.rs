//! The agent's shared state: its configuration, the runtime and image store, the pods it
//! runs, the ConfigMaps/Secrets they read, and the queues of status updates and events
//! waiting for the coordinator.

use crate::local::Local;
use crate::pods::podspec::Sources;
use serde_json::Value;
use skiff_api::core::Event;
use skiff_api::meta::ObjectReference;
use skiff_api::pod::{Pod, PodStatus};
use skiff_api::Kind;
use skiff_images::{ImageStore, RegistryConfig};
use skiff_runtime::Runtime;
use skiff_transport::Client;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub server: Option<String>,
    pub token: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub node_ip: Option<IpAddr>,
    /// The first restart delay (the kubelet's 10 s); it doubles up to 30×, and resets
    /// after 60× of running.
    pub backoff_base: Duration,
    pub heartbeat: Duration,
    pub usage_interval: Duration,
    pub max_pods: u32,
    /// The Ingress class the node serves (besides Ingresses without one).
    pub ingress_class: String,
    /// Ingress ports; 0 turns one off.
    pub ingress_http_port: u16,
    pub ingress_https_port: u16,
    /// How this node reaches other nodes' pods.
    pub pod_network: crate::network::overlay::Backend,
    /// The runtime helper stops after this long without a request (zero: never).
    pub helper_idle: Duration,
    /// Where `local-path` volumes live on this node (advertised on its Node).
    pub local_path_dir: PathBuf,
}

/// What a pod worker should make true.
#[derive(Clone)]
pub struct Desired {
    pub pod: Arc<Pod>,
    pub sources: Arc<Sources>,
    /// The pod is gone from the coordinator: stop it and forget it.
    pub gone: bool,
}

/// What logs and exec need to know of a running pod.
#[derive(Default, Clone, Debug)]
pub struct PodView {
    /// Container name → runtime ids of its attempts, oldest first.
    pub attempts: BTreeMap<String, Vec<String>>,
    /// Container names in spec order (init containers first).
    pub order: Vec<String>,
    /// The first app container (the default for logs and exec).
    pub first_app: Option<String>,
    /// Containers with `stdin: true`, and those with `tty: true` (what attach may use).
    pub stdin: BTreeSet<String>,
    pub tty: BTreeSet<String>,
    /// Netns path for probes; `None` with host networking.
    pub netns: Option<PathBuf>,
}

pub struct PodEntry {
    pub namespace: String,
    pub name: String,
    pub desired: watch::Sender<Desired>,
    pub view: Arc<Mutex<PodView>>,
}

/// The node's agent.
pub struct Agent {
    pub cfg: Config,
    pub rt: Arc<Runtime>,
    pub images: Arc<ImageStore>,
    pub registries: RegistryConfig,
    pub local: Local,
    pub host_ip: Mutex<String>,
    /// The node's allocatable resources (what a container without limits may take).
    pub allocatable: std::collections::BTreeMap<String, skiff_api::quantity::Quantity>,
    /// The current connection to the coordinator, if any.
    pub client: watch::Sender<Option<Client>>,
    /// Pod workers by pod uid.
    pub pods: Mutex<HashMap<String, PodEntry>>,
    /// ConfigMaps and Secrets the pods use: (kind, namespace, name) → JSON.
    pub configs: Mutex<HashMap<(Kind, String, String), Value>>,
    pub status: StatusQueue,
    pub events: EventQueue,
    /// What the runtime held when the agent started, by pod uid: adopted by the pod's
    /// worker, not restarted.
    pub adopt: Mutex<HashMap<String, Vec<skiff_runtime::ContainerStatus>>>,
    pub adopt_sandboxes: Mutex<std::collections::HashSet<String>>,
    /// Pods whose state files were unreadable at start: their sandboxes, containers and
    /// addresses are kept until the coordinator's first list says whether they still exist.
    pub unclaimed: Mutex<std::collections::HashSet<String>>,
    /// The pod network, once the node knows its pod CIDR.
    pub net: Mutex<Option<Arc<crate::network::pod_net::PodNetwork>>>,
    /// Nodes, Services and Endpoints as last heard from the coordinator.
    pub cluster: watch::Sender<Arc<crate::services::cluster::ClusterView>>,
    /// A pod got or gave up its address: its host ports are to be forwarded or not.
    pub pod_addresses: tokio::sync::Notify,
}

impl Agent {
    /// The pod network, if the node has its pod CIDR.
    pub fn net(&self) -> Option<Arc<crate::network::pod_net::PodNetwork>> {
        self.net.lock().unwrap().clone()
    }

    /// The containers and sandbox a new worker takes over.
    pub fn adoptable(&self, uid: &str) -> (Vec<skiff_runtime::ContainerStatus>, bool) {
        let containers = self.adopt.lock().unwrap().remove(uid).unwrap_or_default();
        let sandbox = self.adopt_sandboxes.lock().unwrap().remove(uid);
        (containers, sandbox)
    }

    /// The ConfigMaps and Secrets of a namespace, as a pod's sources.
    pub fn sources_for(&self, pod: &Pod) -> Sources {
        let ns = pod.metadata.namespace();
        let cms = pod.spec.config_map_names();
        let secrets = pod.spec.secret_names();
        let configs = self.configs.lock().unwrap();
        let mut s = Sources {
            allocatable: self.allocatable.clone(),
            ..Default::default()
        };
        for ((kind, n, name), v) in configs.iter() {
            if n != ns {
                continue;
            }
            match kind {
                Kind::ConfigMap if cms.contains(name) => {
                    if let Ok(cm) = serde_json::from_value(v.clone()) {
                        s.config_maps.insert(name.clone(), cm);
                    }
                }
                Kind::Secret if secrets.contains(name) => {
                    if let Ok(sec) = serde_json::from_value(v.clone()) {
                        s.secrets.insert(name.clone(), sec);
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// The current coordinator connection.
    pub fn client(&self) -> Option<Client> {
        self.client.borrow().clone()
    }

    /// Records an event about a pod (sent when connected).
    pub fn event(&self, pod: &Pod, type_: &str, reason: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(
            pod = %format!("{}/{}", pod.metadata.namespace(), pod.metadata.name()),
            reason,
            "{message}"
        );
        self.events.push(PendingEvent {
            involved: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(pod.metadata.namespace().to_string()),
                name: Some(pod.metadata.name().to_string()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            type_: type_.to_string(),
            reason: reason.to_string(),
            message,
            at: skiff_api::util::rfc3339(crate::util::now_secs()),
        });
    }
}

/// Status updates waiting to be sent, coalesced per pod: only the newest is kept.
#[derive(Default)]
pub struct StatusQueue {
    inner: Mutex<StatusInner>,
    pub notify: Notify,
}

#[derive(Default)]
struct StatusInner {
    pending: HashMap<String, (Arc<Pod>, PodStatus)>,
    /// The status the coordinator holds, by pod uid.
    known: HashMap<String, PodStatus>,
    /// The last few statuses this agent sent, newest last, by pod uid: echoes of its own
    /// writes are told apart from others' writes by them.
    sent: HashMap<String, std::collections::VecDeque<PodStatus>>,
    /// Pods with a status on its way: until it lands, what the coordinator holds says
    /// nothing of what it will hold, so a newer status is sent even if it equals that.
    /// (A session that ends mid-send leaves them here: [`StatusQueue::resume`] sends them
    /// again.)
    inflight: HashMap<String, (Arc<Pod>, PodStatus)>,
}

impl StatusQueue {
    /// A worker's newest status for its pod; nothing happens if the coordinator has it.
    pub fn publish(&self, pod: &Arc<Pod>, status: PodStatus) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut g = self.inner.lock().unwrap();
        if g.known.get(&uid) == Some(&status) && !g.inflight.contains_key(&uid) {
            g.pending.remove(&uid);
            return;
        }
        g.pending.insert(uid, (pod.clone(), status));
        drop(g);
        self.notify.notify_one();
    }

    /// What the coordinator holds after this agent's write landed.
    pub fn stored(&self, uid: &str, status: Option<PodStatus>) {
        self.inner.lock().unwrap().inflight.remove(uid);
        self.known(uid, status);
    }

    /// What the coordinator holds (from a list or a watch event).
    pub fn known(&self, uid: &str, status: Option<PodStatus>) {
        let mut g = self.inner.lock().unwrap();
        match status {
            Some(s) => {
                if g.pending.get(uid).is_some_and(|(_, p)| *p == s) {
                    g.pending.remove(uid);
                }
                g.known.insert(uid.to_string(), s);
            }
            None => {
                g.known.remove(uid);
            }
        }
    }

    /// A pod as the coordinator holds it (watch event or list). When its status differs
    /// from what this agent last stored there and nothing newer waits, someone else wrote
    /// it (the coordinator marks pods of an unreachable node not ready): the agent's own
    /// view is sent again, since it is the one that runs the pod.
    pub fn observed(&self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let Some(s) = pod.status.clone() else {
            self.known(&uid, None);
            return;
        };
        let mut g = self.inner.lock().unwrap();
        if !g.inflight.contains_key(&uid) && g.pending.get(&uid).is_some_and(|(_, p)| *p == s) {
            g.pending.remove(&uid);
        }
        g.known.insert(uid.clone(), s.clone());
        // Only the phase and readiness are others' to overwrite (the coordinator's node
        // lifecycle); any other difference is an echo of ours, perhaps a late one.
        let key = |st: &PodStatus| {
            let ready = st
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.status.clone());
            (st.phase.clone(), ready)
        };
        let restore = match g.sent.get(&uid) {
            Some(sent) if sent.contains(&s) || sent.back().is_some_and(|m| key(m) == key(&s)) => {
                None
            }
            Some(sent) => sent.back().cloned(),
            None => None,
        };
        if let Some(mine) = restore {
            if !g.pending.contains_key(&uid) && pod.metadata.deletion_timestamp.is_none() {
                g.pending.insert(uid, (Arc::new(pod.clone()), mine));
                drop(g);
                self.notify.notify_one();
            }
        }
    }

    /// The newest status of a pod: pending, else what the coordinator holds.
    pub fn latest(&self, uid: &str) -> Option<PodStatus> {
        let g = self.inner.lock().unwrap();
        g.pending
            .get(uid)
            .map(|(_, s)| s.clone())
            .or_else(|| g.known.get(uid).cloned())
    }

    /// Forgets a pod.
    pub fn forget(&self, uid: &str) {
        let mut g = self.inner.lock().unwrap();
        g.pending.remove(uid);
        g.known.remove(uid);
        g.sent.remove(uid);
        g.inflight.remove(uid);
    }

    /// Takes every pending update (remembered as sent).
    pub fn take(&self) -> Vec<(Arc<Pod>, PodStatus)> {
        let mut g = self.inner.lock().unwrap();
        let out: Vec<(Arc<Pod>, PodStatus)> = g.pending.drain().map(|(_, v)| v).collect();
        for (pod, status) in &out {
            g.inflight.insert(
                pod.metadata.uid.clone().unwrap_or_default(),
                (pod.clone(), status.clone()),
            );
            let sent = g
                .sent
                .entry(pod.metadata.uid.clone().unwrap_or_default())
                .or_default();
            if sent.len() >= 4 {
                sent.pop_front();
            }
            sent.push_back(status.clone());
        }
        out
    }

    /// Puts an update back after a failed send (unless a newer one arrived).
    pub fn retry(&self, pod: Arc<Pod>, status: PodStatus) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut g = self.inner.lock().unwrap();
        g.inflight.remove(&uid);
        g.pending.entry(uid).or_insert((pod, status));
    }

    /// A new session: what the last one took and did not see land goes again (unless a
    /// newer status waits).
    pub fn resume(&self) {
        let mut g = self.inner.lock().unwrap();
        for (uid, v) in std::mem::take(&mut g.inflight) {
            g.pending.entry(uid).or_insert(v);
        }
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().unwrap().pending.is_empty()
    }
}

/// One event before it is sent.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub involved: ObjectReference,
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub at: String,
}

/// Events waiting to be sent (bounded: the oldest go first when the node is cut off long).
#[derive(Default)]
pub struct EventQueue {
    queue: Mutex<VecDeque<PendingEvent>>,
    /// Sent events by (pod uid, reason, message) → the Event, for counting repeats.
    sent: Mutex<HashMap<(String, String, String), Event>>,
    pub notify: Notify,
}

const MAX_QUEUED_EVENTS: usize = 1000;

impl EventQueue {
    pub fn push(&self, e: PendingEvent) {
        let mut q = self.queue.lock().unwrap();
        if q.len() >= MAX_QUEUED_EVENTS {
            q.pop_front();
        }
        q.push_back(e);
        drop(q);
        self.notify.notify_one();
    }

    pub fn pop(&self) -> Option<PendingEvent> {
        self.queue.lock().unwrap().pop_front()
    }

    pub fn push_front(&self, e: PendingEvent) {
        self.queue.lock().unwrap().push_front(e);
    }

    /// The Event to write for `e`: a new one, or the earlier one with its count raised.
    pub fn object_for(&self, e: &PendingEvent, node: &str) -> (Event, bool) {
        let key = (
            e.involved.uid.clone().unwrap_or_default(),
            e.reason.clone(),
            e.message.clone(),
        );
        let mut sent = self.sent.lock().unwrap();
        if let Some(prev) = sent.get_mut(&key) {
            prev.count = Some(prev.count.unwrap_or(1) + 1);
            prev.last_timestamp = Some(e.at.clone());
            prev.metadata.resource_version = None;
            return (prev.clone(), false);
        }
        if sent.len() > 4096 {
            sent.clear();
        }
        let pod = e.involved.name.clone().unwrap_or_default();
        let mut ev = Event::new(
            e.involved.clone(),
            &e.type_,
            e.reason.clone(),
            e.message.clone(),
            e.at.clone(),
            skiff_api::core::EventSource {
                component: Some("kubelet".into()),
                host: Some(node.to_string()),
            },
        );
        ev.metadata.name = Some(format!("{pod}.{}", crate::util::random_hex(8)));
        ev.reporting_component = Some("skiff-agent".into());
        ev.reporting_instance = Some(node.to_string());
        sent.insert(key, ev.clone());
        (ev, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.uid = Some("u1".into());
        Arc::new(p)
    }

    fn status(phase: &str) -> PodStatus {
        PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_status_equal_to_the_stored_one_still_goes_while_another_is_on_its_way() {
        let q = StatusQueue::default();
        let p = pod();
        q.known("u1", Some(status("Running")));
        // Equal to what the coordinator holds, nothing in flight: nothing to send.
        q.publish(&p, status("Running"));
        assert!(q.is_empty());
        q.publish(&p, status("Pending"));
        let sent = q.take();
        assert_eq!(sent.len(), 1);
        // While "Pending" is on its way the pod runs again: that must follow it, although
        // the coordinator (still) holds "Running".
        q.publish(&p, status("Running"));
        assert!(!q.is_empty());
        q.stored("u1", Some(status("Pending")));
        let next = q.take();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1, status("Running"));
    }

    #[test]
    fn a_session_lost_mid_send_sends_again() {
        let q = StatusQueue::default();
        let p = pod();
        q.publish(&p, status("Running"));
        assert_eq!(q.take().len(), 1);
        // The session ended before the write was confirmed.
        assert!(q.is_empty());
        q.resume();
        assert_eq!(q.take()[0].1, status("Running"));
        q.stored("u1", Some(status("Running")));
        q.resume();
        assert!(q.is_empty(), "a status that landed is not sent again");
    }
}
