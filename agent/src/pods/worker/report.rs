//! The pod's status as the kubelet reports it: each container's state, last state,
//! readiness and restart count from what the runtime and the probes say, then the pod's
//! phase and conditions (`status.rs`), queued for the coordinator.

use super::*;

impl Worker {
    pub(super) fn container_status(
        &self,
        c: &Container,
        cur: Option<&RtStatus>,
        init_pending: bool,
    ) -> ContainerStatus {
        let s = self.cs.get(&c.name);
        let attempt = s.and_then(|s| s.attempts.last()).map_or(0, |(a, _)| *a);
        let restart_count = attempt as i32;
        let waiting = |reason: &str, message: Option<String>| ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message,
            }),
            ..Default::default()
        };
        let terminated = |st: &RtStatus, e: &ExitInfo| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: Some(e.exit_code),
                signal: e.signal,
                reason: Some(
                    if e.oom_killed {
                        "OOMKilled"
                    } else if e.exit_code == 0 {
                        "Completed"
                    } else {
                        "Error"
                    }
                    .into(),
                ),
                message: None,
                started_at: st.started_at.as_deref().map(seconds),
                finished_at: Some(seconds(&e.finished_at)),
                container_id: Some(format!("skiff://{}", st.id)),
            }),
            ..Default::default()
        };
        let flags = s.and_then(|s| s.probes.as_ref()).map(|p| p.flags.clone());
        let mut last_state = None;
        let mut ready = false;
        let mut started = false;
        let state = match (s.and_then(|s| s.waiting.clone()), cur) {
            (Some((reason, msg)), cur) => {
                if let Some((st, RtState::Exited(e))) = cur.map(|c| (c, &c.state)) {
                    last_state = Some(terminated(st, e));
                }
                waiting(&reason, Some(msg))
            }
            (None, None) => waiting(
                if init_pending {
                    "PodInitializing"
                } else {
                    "ContainerCreating"
                },
                None,
            ),
            (None, Some(st)) => match &st.state {
                RtState::Running => {
                    started = flags
                        .as_ref()
                        .is_none_or(|f| f.started.load(Ordering::SeqCst));
                    ready = flags
                        .as_ref()
                        .is_some_and(|f| f.ready.load(Ordering::SeqCst));
                    ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: st.started_at.as_deref().map(seconds),
                        }),
                        ..Default::default()
                    }
                }
                RtState::Created => waiting("ContainerCreating", None),
                RtState::Exited(e) => {
                    if s.and_then(|s| s.not_before).is_some() {
                        last_state = Some(terminated(st, e));
                        let delay = s.and_then(|s| s.backoff).unwrap_or_default();
                        waiting(
                            "CrashLoopBackOff",
                            Some(format!(
                                "back-off {}s restarting failed container={} pod={}",
                                delay.as_secs(),
                                c.name,
                                self.rx.borrow().pod.metadata.name()
                            )),
                        )
                    } else {
                        terminated(st, e)
                    }
                }
                RtState::Unknown => {
                    let e = ExitInfo {
                        exit_code: 255,
                        signal: None,
                        oom_killed: false,
                        finished_at: st.created_at.clone(),
                    };
                    terminated(st, &e)
                }
            },
        };
        if last_state.is_none() {
            if let Some(st) = s.and_then(|s| s.previous.as_ref()) {
                if let RtState::Exited(e) = &st.state {
                    last_state = Some(terminated(st, e));
                }
            }
        }
        ContainerStatus {
            name: c.name.clone(),
            state: Some(state),
            last_state,
            ready: Some(ready),
            started: Some(started),
            restart_count: Some(restart_count),
            image: c.image.clone(),
            image_id: s.and_then(|s| s.image_id.clone()),
            container_id: cur.map(|st| format!("skiff://{}", st.id)),
        }
    }

    pub(super) fn publish(&self, pod: &Arc<Pod>, observed: &HashMap<String, RtStatus>) {
        let init: Vec<ContainerStatus> = pod
            .spec
            .init_containers
            .iter()
            .map(|c| self.container_status(c, observed.get(&c.name), false))
            .collect();
        let sidecars: Vec<bool> = pod
            .spec
            .init_containers
            .iter()
            .map(|c| c.is_sidecar())
            .collect();
        let init_done = status::initialized(&init, &sidecars, &[]);
        let containers: Vec<ContainerStatus> = pod
            .spec
            .containers
            .iter()
            .map(|c| self.container_status(c, observed.get(&c.name), !init_done))
            .collect();
        let policy = pod.spec.restart_policy.as_deref().unwrap_or("Always");
        let phase = match self.deadline_exceeded {
            true => "Failed",
            false => status::phase(policy, &init, &sidecars, &containers),
        };
        let (reason, message) = match self.deadline_exceeded {
            true => (
                Some(plan::DEADLINE_REASON.to_string()),
                Some(plan::DEADLINE_MESSAGE.to_string()),
            ),
            false => (None, None),
        };
        let prev = self.last_status(pod);
        let conditions = status::conditions(
            prev.as_ref(),
            &init,
            &sidecars,
            &containers,
            phase,
            &now_ts(),
        );
        let pod_ip = self.pod_ip(pod);
        let st = PodStatus {
            phase: Some(phase.into()),
            reason,
            message,
            conditions,
            host_ip: Some(self.host_ip()),
            pod_ips: pod_ip.iter().map(|ip| PodIp { ip: ip.clone() }).collect(),
            pod_ip,
            start_time: self.start_time.clone(),
            init_container_statuses: init,
            container_statuses: containers,
        };
        self.agent.status.publish(pod, st);
    }
}
