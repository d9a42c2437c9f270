//! Pod events routed to the node they are bound to.
//!
//! Every agent watches the pods bound to it. Left to the store, each of a thousand node
//! watches would receive every pod event of the cluster and drop nearly all of them —
//! and fall behind the store's in-memory fan-out in a burst and reread its log. The hub
//! is the one watcher of pods: it reads each event once and hands it to the watches of
//! its node only. A node watch that starts from an older revision first reads the store's
//! history up to the hub's position, then takes the hub's events after it.

use crate::store::{StoreError, StoreEvent, WatchFilter, WatchStream};
use crate::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// How many events a node watch may have waiting before it is dropped (it then relists).
pub const QUEUE: usize = 4096;

type Sub = mpsc::Sender<Arc<StoreEvent>>;

#[derive(Default)]
struct State {
    running: bool,
    /// The revision of the last pod event dispatched (or where the hub started).
    position: u64,
    subs: HashMap<String, Vec<Sub>>,
}

/// The router (one per API server).
#[derive(Default, Clone)]
pub struct PodHub {
    state: Arc<Mutex<State>>,
}

/// A node's subscription: events after `position` arrive on `events`.
pub struct Subscription {
    /// Events of pods bound to the node with a revision above `position`.
    pub events: mpsc::Receiver<Arc<StoreEvent>>,
    /// What the hub had dispatched when the subscription began.
    pub position: u64,
}

impl PodHub {
    /// Subscribes a node. `start` opens the hub's own store watch of pods from a revision
    /// when the hub is not running yet; its current revision is the second argument's.
    pub fn subscribe<W, F>(
        &self,
        node: &str,
        current: u64,
        start: F,
    ) -> Result<Subscription, StoreError>
    where
        W: WatchStream + 'static,
        F: FnOnce(u64) -> Result<W, StoreError>,
    {
        let mut st = self.state.lock().unwrap();
        if !st.running {
            let w = start(current)?;
            st.running = true;
            st.position = current;
            tokio::spawn(run(self.state.clone(), w));
        }
        // Watches whose clients left without an event to tell the hub go now.
        st.subs.retain(|_, v| {
            v.retain(|tx| !tx.is_closed());
            !v.is_empty()
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        st.subs.entry(node.to_string()).or_default().push(tx);
        Ok(Subscription {
            events: rx,
            position: st.position,
        })
    }

    /// How many node watches are subscribed (tests, diagnostics).
    pub fn subscribers(&self) -> usize {
        self.state.lock().unwrap().subs.values().map(Vec::len).sum()
    }
}

/// The watch filter for pods in every namespace.
pub fn pods() -> WatchFilter {
    WatchFilter {
        kind: skiff_api::Kind::Pod,
        namespace: None,
        selector: Default::default(),
    }
}

async fn run<W: WatchStream>(state: Arc<Mutex<State>>, mut w: W) {
    loop {
        let r = w.next().await;
        let mut st = state.lock().unwrap();
        match r {
            Ok(e) => {
                st.position = e.revision;
                let Some(node) = e.node_name() else { continue };
                if let Some(subs) = st.subs.get_mut(node) {
                    // A watch whose queue is full or whose client left is dropped; the
                    // former learns it from its channel closing and relists.
                    subs.retain(|tx| tx.try_send(e.clone()).is_ok());
                    if subs.is_empty() {
                        st.subs.remove(node);
                    }
                }
            }
            Err(err) => {
                // The hub fell out of the store's history or the store closed: every node
                // watch ends (their clients relist) and the next subscription starts anew.
                tracing::warn!(error = %err, "pod event routing restarts");
                st.running = false;
                st.subs.clear();
                return;
            }
        }
    }
}
