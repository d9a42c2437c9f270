//! Hands each pod the coordinator (or the local copy) says the node runs to its worker:
//! starts a worker for a new pod, gives a running one the pod's newest spec and sources,
//! and tells it when the pod is gone.

use super::worker;
use crate::state::{Agent, Desired};
use skiff_api::pod::Pod;
use std::sync::Arc;

/// The pod without what changes while nothing should change in what runs.
fn spec_view(p: &Pod) -> Pod {
    let mut p = p.clone();
    p.status = None;
    p.metadata.resource_version = None;
    p
}

/// Takes note of the coordinator's copy of a pod; true when its worker needs the new
/// spec (the pod is then kept on disk for offline restarts).
pub fn take(agent: &Agent, pod: &Pod) -> bool {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    agent.status.observed(pod);
    // Most events are the pod's own status updates: nothing to keep or to hand on then.
    let unchanged = agent
        .pods
        .lock()
        .unwrap()
        .get(uid)
        .is_some_and(|e| spec_view(&e.desired.borrow().pod) == spec_view(pod));
    if unchanged {
        return false;
    }
    if let Err(e) = agent.local.save_pod(pod) {
        tracing::warn!(pod = %pod.metadata.name(), error = %e, "keeping the pod on disk");
    }
    true
}

/// Starts a worker for a pod, or hands an existing one the pod's newest spec.
pub fn start_or_update(agent: &Arc<Agent>, pod: Pod) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let sources = Arc::new(agent.sources_for(&pod));
    let mut pods = agent.pods.lock().unwrap();
    if let Some(e) = pods.get(&uid) {
        let cur = e.desired.borrow().clone();
        let changed = spec_view(&cur.pod) != spec_view(&pod) || *cur.sources != *sources;
        if changed {
            let _ = e.desired.send(Desired {
                pod: Arc::new(pod),
                sources,
                gone: false,
            });
        }
        return;
    }
    let (existing, sandbox) = agent.adoptable(&uid);
    let entry = worker::spawn(
        agent.clone(),
        Desired {
            pod: Arc::new(pod),
            sources,
            gone: false,
        },
        &existing,
        sandbox,
    );
    pods.insert(uid, entry);
}

/// The pod is gone from the coordinator: its worker stops it and forgets it.
pub fn stop(agent: &Agent, uid: &str) {
    let _ = agent.local.remove_pod(uid);
    if let Some(e) = agent.pods.lock().unwrap().get(uid) {
        let mut d = e.desired.borrow().clone();
        if !d.gone {
            d.gone = true;
            let _ = e.desired.send(d);
        }
    }
}

/// How often the node's links are checked for pods' broken networks.
const PORT_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Wakes the worker of every pod whose veth or the node's bridge went (`PodNetwork::
/// broken_ports`, one link dump every 5 s): its pass then finds the sandbox broken and
/// makes it anew, even if nothing else would wake a quiet pod for a minute. Namespaces,
/// mounts and what is inside the pod are checked by the worker on each pass.
pub async fn watch_ports(agent: Arc<Agent>) {
    let mut tick = tokio::time::interval(PORT_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(net) = agent.net() else { continue };
        let uids: Vec<String> = agent.pods.lock().unwrap().keys().cloned().collect();
        if uids.is_empty() {
            continue;
        }
        let broken =
            match crate::util::blocking(move || net.broken_ports(&uids).map_err(|e| e.to_string()))
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!("checking pods' links: {e}");
                    continue;
                }
            };
        let pods = agent.pods.lock().unwrap();
        for uid in broken {
            if let Some(e) = pods.get(&uid) {
                tracing::debug!(pod = %uid, "its link to the bridge is broken: waking its worker");
                e.desired.send_modify(|_| {});
            }
        }
    }
}
