//! Verbs on workloads and nodes: `scale`, `autoscale`, `rollout`, `set image`, `cordon`,
//! `uncordon`, `drain`. Each reads the object, changes it and writes it back with its
//! `resourceVersion` as a precondition (retrying on a conflict), as kubectl does.

use anyhow::{anyhow, bail};
use skiff_api::pod::Pod;
use skiff_api::util::rfc3339;
use skiff_api::wire::{ErrorCode, Request};
use skiff_api::workloads::{rollback_template, ReplicaSet};
use skiff_api::{Kind, Object, ObjectKey};
use skiff_transport::Client;
use std::time::{Duration, Instant};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn get(c: &Client, key: &ObjectKey) -> anyhow::Result<Object> {
    let v = c.get_json(key.clone()).await?;
    Object::from_value(&v).map_err(|e| anyhow!("{key}: {e}"))
}

/// Reads, changes and writes back an object, retrying when someone else wrote it first.
/// `change` returns false when there is nothing to write.
pub async fn modify(
    c: &Client,
    key: &ObjectKey,
    mut change: impl FnMut(&mut Object) -> anyhow::Result<bool>,
) -> anyhow::Result<bool> {
    for _ in 0..5 {
        let mut o = get(c, key).await?;
        if !change(&mut o)? {
            return Ok(false);
        }
        let json = serde_json::to_string(&o.to_value())?;
        match c
            .call(&Request::Update {
                object: json,
                status: false,
            })
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if e.code() == Some(ErrorCode::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("{key} kept changing; try again")
}

/// `skiff scale KIND NAME --replicas N`.
pub async fn scale(c: &Client, key: &ObjectKey, replicas: i32) -> anyhow::Result<()> {
    if replicas < 0 {
        bail!("--replicas={replicas}: must not be negative");
    }
    modify(c, key, |o| {
        let r = match o {
            Object::Deployment(d) => &mut d.spec.replicas,
            Object::ReplicaSet(r) => &mut r.spec.replicas,
            Object::StatefulSet(s) => &mut s.spec.replicas,
            other => bail!(
                "{}: cannot be scaled (deployments, replicasets and statefulsets can)",
                other.display_name()
            ),
        };
        *r = Some(replicas);
        Ok(true)
    })
    .await?;
    println!("{}/{} scaled", key.kind.qualified(), key.name);
    Ok(())
}

/// `skiff autoscale KIND NAME --max N [--min N] [--cpu-percent P]`: a HorizontalPodAutoscaler
/// (autoscaling/v2) for the target, as `kubectl autoscale` creates one. The server
/// validates it (bounds, percent).
pub async fn autoscale(
    c: &Client,
    key: &ObjectKey,
    a: &crate::args::AutoscaleArgs,
) -> anyhow::Result<()> {
    let target = get(c, key).await?;
    if !matches!(
        target.kind(),
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet
    ) {
        bail!(
            "{}: cannot be autoscaled (deployments, replicasets and statefulsets can)",
            target.display_name()
        );
    }
    let name = a.name.clone().unwrap_or_else(|| key.name.clone());
    let mut spec = serde_json::json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target.kind().name(), "name": key.name},
        "maxReplicas": a.max,
    });
    if let Some(m) = a.min {
        spec["minReplicas"] = m.into();
    }
    if let Some(p) = a.cpu_percent {
        spec["metrics"] = serde_json::json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": p}}}]);
    }
    let hpa = serde_json::json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": key.namespace},
        "spec": spec,
    });
    c.call(&Request::Create {
        object: hpa.to_string(),
    })
    .await?;
    println!("horizontalpodautoscaler.autoscaling/{name} autoscaled");
    Ok(())
}

/// `skiff set image KIND/NAME CONTAINER=IMAGE...` (`*=IMAGE`: every container).
pub async fn set_image(c: &Client, key: &ObjectKey, pairs: &[String]) -> anyhow::Result<()> {
    let mut want = Vec::new();
    for p in pairs {
        let (name, image) = p
            .split_once('=')
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
            .ok_or_else(|| anyhow!("{p:?}: want CONTAINER=IMAGE"))?;
        want.push((name.to_string(), image.to_string()));
    }
    if want.is_empty() {
        bail!("at least one CONTAINER=IMAGE is required");
    }
    let changed = modify(c, key, |o| {
        let spec = match o {
            Object::Deployment(d) => &mut d.spec.template.spec,
            Object::DaemonSet(d) => &mut d.spec.template.spec,
            Object::StatefulSet(s) => &mut s.spec.template.spec,
            Object::ReplicaSet(r) => &mut r.spec.template.spec,
            Object::Pod(p) => &mut p.spec,
            other => bail!("{}: has no pod template", other.display_name()),
        };
        let mut changed = false;
        for (name, image) in &want {
            let mut found = false;
            for ctr in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut())
            {
                if name == "*" || ctr.name == *name {
                    found = true;
                    if ctr.image.as_deref() != Some(image) {
                        ctr.image = Some(image.clone());
                        changed = true;
                    }
                }
            }
            if !found {
                bail!("unable to find container named {name:?}");
            }
        }
        Ok(changed)
    })
    .await?;
    if changed {
        println!("{}/{} image updated", key.kind.qualified(), key.name);
    } else {
        println!("{}/{} image unchanged", key.kind.qualified(), key.name);
    }
    Ok(())
}

/// The ReplicaSets a Deployment controls.
async fn owned_replica_sets(
    c: &Client,
    key: &ObjectKey,
    uid: &str,
) -> anyhow::Result<Vec<ReplicaSet>> {
    let (_, items) = c
        .list_all(Kind::ReplicaSet, Some(key.namespace.clone()), None)
        .await?;
    Ok(items
        .iter()
        .filter_map(|j| match Object::from_json(Kind::ReplicaSet, j) {
            Ok(Object::ReplicaSet(r)) => Some(r),
            _ => None,
        })
        .filter(|r| r.metadata.controller().is_some_and(|o| o.uid == uid))
        .collect())
}

/// What `rollout status` waits on, as kubectl words it; `Ok(None)` when done.
fn rollout_state(o: &Object) -> anyhow::Result<Option<String>> {
    match o {
        Object::Deployment(d) => {
            let name = d.metadata.name();
            let st = d.status.clone().unwrap_or_default();
            if d.metadata.generation > st.observed_generation {
                return Ok(Some(
                    "Waiting for deployment spec update to be observed...".into(),
                ));
            }
            if st.conditions.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            }) {
                bail!("deployment {name:?} exceeded its progress deadline");
            }
            let want = d.spec.replicas.unwrap_or(1);
            let updated = st.updated_replicas.unwrap_or(0);
            let total = st.replicas.unwrap_or(0);
            let available = st.available_replicas.unwrap_or(0);
            Ok(if updated < want {
                Some(format!("Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated..."))
            } else if total > updated {
                Some(format!("Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...", total - updated))
            } else if available < updated {
                Some(format!("Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."))
            } else {
                None
            })
        }
        Object::DaemonSet(d) => {
            let name = d.metadata.name();
            let st = d.status.clone().unwrap_or_default();
            if d.metadata.generation > st.observed_generation {
                return Ok(Some(
                    "Waiting for daemon set spec update to be observed...".into(),
                ));
            }
            let want = st.desired_number_scheduled.unwrap_or(0);
            let updated = st.updated_number_scheduled.unwrap_or(0);
            let available = st.number_available.unwrap_or(0);
            Ok(if updated < want {
                Some(format!("Waiting for daemon set {name:?} rollout to finish: {updated} out of {want} new pods have been updated..."))
            } else if available < want {
                Some(format!("Waiting for daemon set {name:?} rollout to finish: {available} of {want} updated pods are available..."))
            } else {
                None
            })
        }
        Object::StatefulSet(s) => {
            let st = s.status.clone().unwrap_or_default();
            if s.metadata.generation > st.observed_generation {
                return Ok(Some(
                    "Waiting for statefulset spec update to be observed...".into(),
                ));
            }
            let want = s.spec.replicas.unwrap_or(1);
            let ready = st.ready_replicas.unwrap_or(0);
            Ok(if ready < want {
                Some(format!("Waiting for {} pods to be ready...", want - ready))
            } else if st.update_revision != st.current_revision {
                Some(format!(
                    "Waiting for partitioned roll out to finish: {} out of {want} new pods have been updated...",
                    st.updated_replicas.unwrap_or(0)
                ))
            } else {
                None
            })
        }
        other => bail!(
            "{}: no rollout status (deployments, daemonsets and statefulsets have one)",
            other.display_name()
        ),
    }
}

/// `skiff rollout ACTION KIND/NAME`.
pub async fn rollout(
    c: &Client,
    action: &str,
    key: &ObjectKey,
    to_revision: i64,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let shown = format!("{}/{}", key.kind.qualified(), key.name);
    let deployment_only = |what: &str| -> anyhow::Result<()> {
        if key.kind != Kind::Deployment {
            bail!(
                "rollout {what}: only deployments (not {})",
                key.kind.info().plural
            );
        }
        Ok(())
    };
    match action {
        "status" => rollout_status(c, key, timeout).await,
        "history" => {
            deployment_only("history")?;
            rollout_history(c, key, &shown).await
        }
        "undo" => {
            deployment_only("undo")?;
            let Object::Deployment(d) = get(c, key).await? else {
                unreachable!()
            };
            let rss = owned_replica_sets(c, key, d.metadata.uid.as_deref().unwrap_or("")).await?;
            let (rev, template) =
                rollback_template(&d, &rss, to_revision).map_err(|e| anyhow!(e))?;
            if template == d.spec.template {
                println!(
                    "{shown} skipped rollback (current template already matches revision {rev})"
                );
                return Ok(());
            }
            modify(c, key, |o| {
                let Object::Deployment(d) = o else {
                    unreachable!()
                };
                d.spec.template = template.clone();
                Ok(true)
            })
            .await?;
            println!("{shown} rolled back");
            Ok(())
        }
        "restart" => {
            let at = rfc3339(now_secs());
            modify(c, key, |o| {
                let t = match o {
                    Object::Deployment(d) => &mut d.spec.template,
                    Object::DaemonSet(d) => &mut d.spec.template,
                    Object::StatefulSet(s) => &mut s.spec.template,
                    other => bail!("{}: cannot be restarted", other.display_name()),
                };
                t.metadata
                    .annotations
                    .insert("kubectl.kubernetes.io/restartedAt".into(), at.clone());
                Ok(true)
            })
            .await?;
            println!("{shown} restarted");
            Ok(())
        }
        "pause" | "resume" => {
            deployment_only(action)?;
            let pause = action == "pause";
            let changed = modify(c, key, |o| {
                let Object::Deployment(d) = o else {
                    unreachable!()
                };
                if (d.spec.paused == Some(true)) == pause {
                    return Ok(false);
                }
                d.spec.paused = Some(pause);
                Ok(true)
            })
            .await?;
            match (changed, pause) {
                (true, true) => println!("{shown} paused"),
                (true, false) => println!("{shown} resumed"),
                (false, true) => bail!("{shown} is already paused"),
                (false, false) => bail!("{shown} is not paused"),
            }
            Ok(())
        }
        other => bail!(
            "unknown rollout action {other:?}: use status, history, undo, restart, pause or resume"
        ),
    }
}

/// `rollout status`: the rollout's progress as it changes, until it is complete (or the
/// timeout passes).
async fn rollout_status(
    c: &Client,
    key: &ObjectKey,
    timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let o = get(c, key).await?;
        match rollout_state(&o)? {
            None => {
                let what = match key.kind {
                    Kind::Deployment => "deployment",
                    Kind::DaemonSet => "daemon set",
                    _ => "statefulset",
                };
                if key.kind == Kind::StatefulSet {
                    println!(
                        "partitioned roll out complete: {} new pods have been updated...",
                        match &o {
                            Object::StatefulSet(s) => s
                                .status
                                .as_ref()
                                .and_then(|s| s.updated_replicas)
                                .unwrap_or(0),
                            _ => 0,
                        }
                    );
                } else {
                    println!("{what} {:?} successfully rolled out", key.name);
                }
                return Ok(());
            }
            Some(m) => {
                if m != last {
                    println!("{m}");
                    last = m;
                }
            }
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            bail!("timed out waiting for the condition");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `rollout history`: a Deployment's revisions and their change causes.
async fn rollout_history(c: &Client, key: &ObjectKey, shown: &str) -> anyhow::Result<()> {
    let Object::Deployment(d) = get(c, key).await? else {
        unreachable!()
    };
    let mut rss = owned_replica_sets(c, key, d.metadata.uid.as_deref().unwrap_or("")).await?;
    rss.sort_by_key(|r| r.revision());
    println!("{shown}");
    let rows: Vec<Vec<String>> = rss
        .iter()
        .filter(|r| r.revision() > 0)
        .map(|r| {
            vec![
                r.revision().to_string(),
                r.metadata
                    .annotations
                    .get("kubernetes.io/change-cause")
                    .cloned()
                    .unwrap_or_else(|| "<none>".into()),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::print::table(&["REVISION".into(), "CHANGE-CAUSE".into()], &rows)
    );
    Ok(())
}

/// `skiff cordon|uncordon NODE`.
pub async fn cordon(c: &Client, node: &str, on: bool) -> anyhow::Result<()> {
    let key = ObjectKey {
        kind: Kind::Node,
        namespace: String::new(),
        name: node.into(),
    };
    let changed = modify(c, &key, |o| {
        let Object::Node(n) = o else { unreachable!() };
        if (n.spec.unschedulable == Some(true)) == on {
            return Ok(false);
        }
        n.spec.unschedulable = on.then_some(true);
        Ok(true)
    })
    .await?;
    let verb = if on { "cordoned" } else { "uncordoned" };
    if changed {
        println!("node/{node} {verb}");
    } else {
        println!("node/{node} already {verb}");
    }
    Ok(())
}

/// How `drain` treats the pods it cannot simply evict.
pub struct DrainOptions {
    /// Leave DaemonSet pods (they would come back at once).
    pub ignore_daemonsets: bool,
    /// Delete pods no controller would replace.
    pub force: bool,
    /// Delete pods with emptyDir volumes (their data is lost).
    pub delete_emptydir_data: bool,
    /// Overrides the pods' grace periods.
    pub grace_period: Option<i64>,
    /// Give up after this long.
    pub timeout: Option<Duration>,
}

/// Evicts the pods, as kubectl does: a pod whose disruption budget allows no eviction now
/// (`TooManyRequests`) is tried again every 5 s until it goes or the drain's timeout.
async fn evict_all(
    c: &Client,
    pods: &[&Pod],
    opts: &DrainOptions,
    started: Instant,
) -> anyhow::Result<()> {
    let mut pending: Vec<&Pod> = pods.to_vec();
    while !pending.is_empty() {
        let mut refused = Vec::new();
        for p in pending {
            let (ns, name) = (p.metadata.namespace(), p.metadata.name());
            println!("evicting pod {ns}/{name}");
            let key = ObjectKey {
                kind: Kind::Pod,
                namespace: ns.to_string(),
                name: name.to_string(),
            };
            let req = Request::Evict {
                key,
                grace_period_seconds: opts.grace_period,
            };
            match c.call(&req).await {
                Ok(_) => {}
                Err(e) if e.code() == Some(ErrorCode::NotFound) => {}
                Err(e) if e.code() == Some(ErrorCode::TooManyRequests) => {
                    eprintln!(
                        "error when evicting pods/{name:?} -n {ns:?} (will retry after 5s): {e}"
                    );
                    refused.push(p);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !refused.is_empty() {
            if let Some(t) = opts
                .timeout
                .filter(|t| started.elapsed() + EVICT_RETRY > *t)
            {
                bail!(
                    "drain did not complete within {t:?}: the disruption budgets of {} pod(s) allowed no eviction",
                    refused.len()
                );
            }
            tokio::time::sleep(EVICT_RETRY).await;
        }
        pending = refused;
    }
    Ok(())
}

/// How long drain waits before trying a refused eviction again (kubectl's 5 s).
const EVICT_RETRY: Duration = Duration::from_secs(5);

/// `skiff drain NODE`: cordon, then evict its pods and wait until they are gone.
pub async fn drain(c: &Client, node: &str, opts: &DrainOptions) -> anyhow::Result<()> {
    cordon(c, node, true).await?;
    let (_, items) = c.list_all(Kind::Pod, None, None).await?;
    let pods: Vec<Pod> = items
        .iter()
        .filter_map(|j| match Object::from_json(Kind::Pod, j) {
            Ok(Object::Pod(p)) => Some(p),
            _ => None,
        })
        .filter(|p| p.spec.node_name.as_deref() == Some(node))
        .collect();
    let mut errors = Vec::new();
    let mut evict = Vec::new();
    for p in &pods {
        let ctrl = p.metadata.controller();
        let id = format!("{}/{}", p.metadata.namespace(), p.metadata.name());
        let finished = matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        );
        if ctrl.is_some_and(|o| o.kind == "DaemonSet") {
            if !opts.ignore_daemonsets {
                errors.push(format!("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {id}"));
            } else {
                println!("Warning: ignoring DaemonSet-managed Pods: {id}");
            }
            continue;
        }
        if ctrl.is_none() && !finished && !opts.force {
            errors.push(format!(
                "cannot delete Pods that declare no controller (use --force to override): {id}"
            ));
            continue;
        }
        if p.spec.volumes.iter().any(|v| v.empty_dir.is_some())
            && !opts.delete_emptydir_data
            && !finished
        {
            errors.push(format!("cannot delete Pods with local storage (use --delete-emptydir-data to override): {id}"));
            continue;
        }
        evict.push(p);
    }
    if !errors.is_empty() {
        bail!(
            "unable to drain node {node:?} due to error(s):\n{}",
            errors.join("\n")
        );
    }
    let started = Instant::now();
    evict_all(c, &evict, opts, started).await?;
    for p in &evict {
        let key = ObjectKey {
            kind: Kind::Pod,
            namespace: p.metadata.namespace().to_string(),
            name: p.metadata.name().to_string(),
        };
        loop {
            match c.get_json(key.clone()).await {
                Err(e) if e.code() == Some(ErrorCode::NotFound) => break,
                Ok(v) if v.pointer("/metadata/uid") != Some(&serde_json::json!(p.metadata.uid)) => {
                    break
                }
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            if opts.timeout.is_some_and(|t| started.elapsed() > t) {
                bail!(
                    "drain did not complete within {:?}",
                    opts.timeout.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!("pod/{} evicted", p.metadata.name());
    }
    println!("node/{node} drained");
    Ok(())
}
