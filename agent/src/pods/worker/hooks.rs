//! Container lifecycle hooks the worker runs outside a stop (`teardown::stop` runs
//! preStop): postStart, right after a container starts.

use super::*;

impl Worker {
    /// The container's postStart hook, as the kubelet runs it: right after the start, the
    /// worker waiting for it (so a sidecar's next init container waits too); one that
    /// fails has its container stopped, to be restarted by its policy.
    pub(super) async fn post_start(&mut self, pod: &Arc<Pod>, c: &Container, id: &str) {
        let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else {
            return;
        };
        let target = self.target(pod, c, id);
        let grace = plan::grace_period(pod, false);
        let Err(e) = probe::run_action(h, &target, grace).await else {
            return;
        };
        self.agent.event(
            pod,
            "Warning",
            "FailedPostStartHook",
            format!("PostStartHook failed: {e}"),
        );
        self.agent.event(
            pod,
            "Normal",
            "Killing",
            format!("FailedPostStartHook: stopping container {}", c.name),
        );
        teardown::stop(&self.agent, pod, c, target, grace).await;
    }
}
