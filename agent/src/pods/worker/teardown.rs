//! A deleted pod's end: its containers stopped in parallel (preStop hook, stop signal,
//! SIGKILL after the grace period) and its sidecars after them, last first; its sandbox,
//! network, root filesystems and logs removed, and the deletion confirmed to the
//! coordinator.

use super::*;

/// The least time a sidecar gets to stop, however little of the pod's grace period its
/// app containers left (the kubelet's `minimumGracePeriodInSeconds`).
const MIN_GRACE: Duration = Duration::from_secs(2);

/// Stops one container: preStop hook, stop signal, SIGKILL when `grace` is over.
pub(super) async fn stop(
    agent: &Agent,
    pod: &Pod,
    c: &Container,
    target: probe::Target,
    grace: Duration,
) {
    let deadline = Instant::now() + grace;
    if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
        if let Err(e) = probe::run_action(h, &target, grace).await {
            agent.event(
                pod,
                "Warning",
                "FailedPreStopHook",
                format!("PreStopHook failed: {e}"),
            );
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let (rt, id) = (target.rt, target.id);
    let _ = blocking(move || rt.stop(&id, left).map(|_| ()).map_err(|e| e.to_string())).await;
}

impl Worker {
    /// Stops one container (its probes first): see [`stop`].
    pub(super) async fn stop_container(
        &mut self,
        pod: &Arc<Pod>,
        c: &Container,
        id: &str,
        grace: Duration,
    ) {
        if let Some(s) = self.cs.get_mut(&c.name) {
            s.probes = None;
        }
        stop(&self.agent, pod, c, self.target(pod, c, id), grace).await;
    }

    /// The containers about to be stopped for the pod's deletion, each said in a Killing
    /// event, with where their preStop hooks go.
    fn stopping(
        &self,
        pod: &Arc<Pod>,
        running: Vec<(String, String)>,
    ) -> Vec<(Container, probe::Target)> {
        let mut out = Vec::new();
        for (name, id) in running {
            let Some(c) = spec_of(pod, &name).cloned() else {
                continue;
            };
            let msg = format!("Stopping container {}", c.name);
            self.agent.event(pod, "Normal", "Killing", msg);
            let target = self.target(pod, &c, &id);
            out.push((c, target));
        }
        out
    }

    /// Stops everything, removes the sandbox, and confirms the deletion to the
    /// coordinator. True when the worker is done.
    pub(super) async fn terminate(&mut self, d: &Desired) -> bool {
        let pod = d.pod.clone();
        if !self.stopped {
            let observed = self.observe().await;
            let running = plan::teardown(&pod, &self.seen(&pod, &observed));
            for s in self.cs.values_mut() {
                s.probes = None;
            }
            // The pod's own containers stop in parallel, each with the whole grace period;
            // then its sidecars, last first, each with what is left of it (at least the
            // kubelet's minimum of 2 s).
            let grace = plan::grace_period(&pod, true);
            let deadline = Instant::now() + grace;
            let (sidecars, own): (Vec<_>, Vec<_>) = running
                .into_iter()
                .partition(|(name, _)| spec_of(&pod, name).is_some_and(|c| c.is_sidecar()));
            let mut set = tokio::task::JoinSet::new();
            for (c, target) in self.stopping(&pod, own) {
                let (agent, p) = (self.agent.clone(), pod.clone());
                set.spawn(async move { stop(&agent, &p, &c, target, grace).await });
            }
            while set.join_next().await.is_some() {}
            for (c, target) in self.stopping(&pod, sidecars) {
                let left = deadline.saturating_duration_since(Instant::now());
                stop(&self.agent, &pod, &c, target, left.max(MIN_GRACE)).await;
            }
            for s in self.cs.values_mut() {
                if let Some((_, h)) = s.exit_watch.take() {
                    h.abort();
                }
            }
            let rt = self.agent.rt.clone();
            let images = self.agent.images.clone();
            let uid = self.uid.clone();
            let ids: Vec<String> = self
                .cs
                .values()
                .flat_map(|s| s.attempts.iter().map(|(_, id)| id.clone()))
                .collect();
            let logs = podspec::log_path(&self.agent.cfg.data_dir.join("logs"), &pod, "x", 0)
                .parent()
                .and_then(|p| p.parent())
                .map(|p| p.to_path_buf());
            let net = self.agent.net();
            let r = blocking(move || {
                rt.remove_sandbox(&uid).map_err(|e| e.to_string())?;
                if let Some(net) = net {
                    net.detach(&uid).map_err(|e| e.to_string())?;
                }
                for id in ids {
                    let _ = images.remove_rootfs(&id);
                }
                if let Some(l) = logs {
                    let _ = std::fs::remove_dir_all(l);
                }
                Ok::<_, String>(())
            })
            .await;
            if let Err(e) = r {
                tracing::warn!(pod = %pod.metadata.name(), error = %e, "removing the pod's sandbox");
                return false;
            }
            self.cs.clear();
            self.stopped = true;
            // Its address is free: its host ports are no longer forwarded.
            self.agent.pod_addresses.notify_one();
        }
        if !d.gone {
            // Confirm: the pod object goes once the node says its containers are gone.
            let Some(client) = self.agent.client() else {
                return false;
            };
            let key = ObjectKey {
                kind: Kind::Pod,
                namespace: pod.metadata.namespace().to_string(),
                name: pod.metadata.name().to_string(),
            };
            let r = client
                .call(&Request::Delete {
                    key,
                    resource_version: None,
                    grace_period_seconds: Some(0),
                    force: false,
                    propagation: Default::default(),
                })
                .await;
            match r {
                Ok(_) => {}
                Err(e) if e.code() == Some(skiff_api::wire::ErrorCode::NotFound) => {}
                Err(e) => {
                    tracing::warn!(pod = %pod.metadata.name(), error = %e, "confirming deletion");
                    return false;
                }
            }
        }
        let _ = self.agent.local.remove_pod(&self.uid);
        self.agent.status.forget(&self.uid);
        true
    }
}
