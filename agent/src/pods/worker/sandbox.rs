//! The pod's sandbox: made, checked on every pass, made anew when it broke, attached to the
//! pod network, its ConfigMap and Secret volumes kept in line with their sources.

use super::*;

impl Worker {
    /// ConfigMap and Secret volumes follow their sources while the pod runs.
    pub(super) async fn refresh_volumes(
        &mut self,
        pod: &Pod,
        sources: &Sources,
    ) -> Result<(), (String, String)> {
        let files = podspec::projected_volumes(pod, sources).map_err(config_err)?;
        if self.files.is_empty() {
            self.files = files;
        } else if files != self.files {
            let rt = self.agent.rt.clone();
            let uid = self.uid.clone();
            let changed: Vec<_> = files
                .iter()
                .filter(|f| !self.files.contains(f))
                .cloned()
                .collect();
            blocking(move || {
                for (vol, f, mode) in changed {
                    rt.update_files(&uid, &vol, &f, mode)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
            .await
            .map_err(|e| ("CreateContainerConfigError".to_string(), e))?;
            self.files = files;
        }
        Ok(())
    }

    /// What the runtime needs to make the pod's sandbox (its projected files kept as the
    /// volumes' current content).
    fn sandbox_config(
        &mut self,
        pod: &Pod,
        sources: &Sources,
    ) -> Result<skiff_runtime::SandboxConfig, (String, String)> {
        let files = podspec::projected_volumes(pod, sources).map_err(config_err)?;
        let gateway = self.agent.net().map(|n| n.gateway());
        let cfg =
            podspec::sandbox(pod, &self.uid, &files, dns(pod, gateway)).map_err(config_err)?;
        self.files = files;
        Ok(cfg)
    }

    /// The sandbox: namespaces, volumes, hostname and DNS.
    pub(super) async fn create_sandbox(
        &mut self,
        pod: &Pod,
        sources: &Sources,
    ) -> Result<(), (String, String)> {
        let cfg = self.sandbox_config(pod, sources)?;
        let rt = self.agent.rt.clone();
        blocking(move || rt.create_sandbox(&cfg).map_err(|e| e.to_string()))
            .await
            .map_err(|e| self.sandbox_failed(pod, format!("Failed to create pod sandbox: {e}")))?;
        self.sandbox_ready = true;
        self.net_ready = false;
        Ok(())
    }

    /// Why the sandbox is not whole, if it is not (checked on every pass): its namespaces
    /// and mounts (`Runtime::sandbox_problem`), and once the pod is on the pod network, its
    /// veth, address and routes and the node's bridge (`PodNetwork::problem`). A sandbox
    /// gone altogether is created again; a check that cannot run breaks nothing.
    pub(super) async fn sandbox_problem(&mut self, pod: &Pod) -> Option<String> {
        let rt = self.agent.rt.clone();
        let uid = self.uid.clone();
        let net = (pod.spec.host_network != Some(true) && (self.net_ready || self.adopted))
            .then(|| self.agent.net())
            .flatten();
        let checked = tokio::task::spawn_blocking(move || {
            match rt.sandbox_problem(&uid) {
                Ok(None) => {}
                Ok(Some(why)) => return Ok(Some(why)),
                Err(skiff_runtime::RuntimeError::NotFound(_)) => return Err(None),
                Err(e) => return Err(Some(e.to_string())),
            }
            match net.map(|n| n.problem(&uid, &rt.sandbox_netns(&uid))) {
                Some(Err(e)) => Err(Some(e.to_string())),
                Some(Ok(why)) => Ok(why),
                None => Ok(None),
            }
        })
        .await
        .unwrap_or(Ok(None));
        match checked {
            Ok(why) => why,
            Err(None) => {
                self.sandbox_ready = false;
                self.net_ready = false;
                None
            }
            Err(Some(e)) => {
                tracing::warn!(pod = %self.uid, error = %e, "cannot check the pod's sandbox");
                None
            }
        }
    }

    /// A sandbox that broke is made anew (the kubelet's `SandboxChanged`): what ran in it
    /// becomes history (restartCount goes on from it, `logs --previous` shows it), every
    /// container starts again without back-off, the pod keeps its address.
    pub(super) async fn recreate_sandbox(
        &mut self,
        pod: &Pod,
        sources: &Sources,
        reason: String,
    ) -> Result<(), (String, String)> {
        tracing::info!(pod = %format!("{}/{}", pod.metadata.namespace(), pod.metadata.name()), %reason, "sandbox broken: making it anew");
        self.agent.event(
            pod,
            "Normal",
            "SandboxChanged",
            format!("Pod sandbox changed, it will be killed and re-created: {reason}"),
        );
        for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
            let s = self.cs.entry(c.name.clone()).or_default();
            let first = s.attempts.last().map_or(0, |(a, _)| a + 1);
            s.backoff = None;
            s.not_before = None;
            s.probes = None;
            if let Some((_, h)) = s.exit_watch.take() {
                h.abort();
            }
            self.first_in_sandbox.insert(c.name.clone(), first);
        }
        let cfg = self.sandbox_config(pod, sources)?;
        // Whatever happens below, the network is to be attached anew; a sandbox left broken
        // by a failure is found broken again on the next pass.
        self.net_ready = false;
        self.adopted = false;
        let rt = self.agent.rt.clone();
        blocking(move || rt.recreate_sandbox(&cfg).map_err(|e| e.to_string()))
            .await
            .map_err(|e| self.sandbox_failed(pod, format!("Failed to create pod sandbox: {e}")))?;
        Ok(())
    }

    /// The pod's address and veth on the pod network.
    pub(super) async fn attach_network(&mut self, pod: &Pod) -> Result<(), (String, String)> {
        let Some(net) = self.agent.net() else {
            return Err((
                "ContainerCreating".into(),
                "the node has no pod network yet: it gets its pod CIDR when it registers with the coordinator".into(),
            ));
        };
        if self.adopted && net.ip_of(&self.uid).is_some() {
            // An adopted sandbox keeps the address and veth it had.
            self.net_ready = true;
            return Ok(());
        }
        let uid = self.uid.clone();
        let netns = self.agent.rt.sandbox_netns(&uid);
        blocking(move || net.attach(&uid, &netns).map(|_| ()))
            .await
            .map_err(|e| {
                self.sandbox_failed(pod, format!("Failed to set up the pod's network: {e}"))
            })?;
        self.net_ready = true;
        self.agent.pod_addresses.notify_one();
        Ok(())
    }

    /// A sandbox or network failure: said in an Event, and the reason the containers wait.
    pub(super) fn sandbox_failed(&self, pod: &Pod, msg: String) -> (String, String) {
        self.agent
            .event(pod, "Warning", "FailedCreatePodSandBox", msg.clone());
        ("ContainerCreating".to_string(), msg)
    }
}

/// The pod's resolv.conf (dnsPolicy ClusterFirst): the agent's cluster DNS on the pod
/// bridge, the cluster search path before the node's, `ndots:5`. Pods on the host's
/// network, or on a node without a pod network yet, get the node's resolvers.
pub(super) fn dns(pod: &Pod, gateway: Option<std::net::Ipv4Addr>) -> skiff_runtime::DnsConfig {
    use crate::services::dns::{host_config, DOMAIN};
    podspec::dns(pod, gateway, DOMAIN, host_config())
}
