//! The Deployment controller: a ReplicaSet per pod template, rolled from the old ones to
//! the new one (RollingUpdate within maxSurge/maxUnavailable, or Recreate), a revision
//! per template, old ReplicaSets kept up to `revisionHistoryLimit`, the Progressing and
//! Available conditions, `paused`.

use super::{
    controller_ref, deleting, event, is_active, is_available, is_ready, set_condition,
    template_hash, Action, PodsByOwner, POD_TEMPLATE_HASH, REVISION,
};
use skiff_api::util::{parse_rfc3339, rfc3339};
use skiff_api::workloads::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use skiff_api::{Kind, Object};
use std::collections::BTreeMap;

/// `maxSurge` and `maxUnavailable` as pod counts (Kubernetes' `ResolveFenceposts`:
/// surge rounds up, unavailable down, and both 0 means one may be unavailable).
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let replicas = d.spec.replicas.unwrap_or(1).max(0);
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let surge = ru
        .and_then(|r| r.max_surge.as_ref())
        .map_or(Ok(0), |v| v.scaled_value(replicas, true))
        .unwrap_or(0)
        .max(0);
    let unavailable = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .map_or(Ok(0), |v| v.scaled_value(replicas, false))
        .unwrap_or(0)
        .max(0);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable.min(replicas))
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// What one Deployment needs; `rss` are the ReplicaSets it controls.
pub fn reconcile(
    d: &Deployment,
    rss: &[&ReplicaSet],
    pods: &PodsByOwner<'_>,
    now: u64,
) -> Vec<Action> {
    if deleting(&d.metadata) {
        return Vec::new();
    }
    let mut pass = Pass::new(d, rss, pods, now);
    if let Some(n) = pass.new_rs {
        if n.revision() < pass.max_rev || n.revision() == 0 {
            // An old template came back (rollback): it becomes the newest revision.
            let mut m = n.clone();
            m.metadata
                .annotations
                .insert(REVISION.into(), (pass.max_rev + 1).to_string());
            pass.next.insert(n.metadata.name().to_string(), m);
        }
    }
    match pass.new_rs {
        // Paused: no new template rolls out; only the replica count follows.
        _ if d.spec.paused == Some(true) => pass.follow_replicas(),
        None => pass.create_new(),
        Some(n) if is_recreate(d) => pass.recreate(n),
        Some(n) => pass.roll(n),
    }
    pass.prune_history();
    let status = pass.status();
    pass.finish(status)
}

/// One pass over a Deployment: what it knows, and what it has decided so far.
struct Pass<'a, 'p> {
    d: &'a Deployment,
    rss: &'a [&'a ReplicaSet],
    pods: &'a PodsByOwner<'p>,
    now: u64,
    replicas: i32,
    surge: i32,
    max_unavailable: i32,
    min_ready: i64,
    max_rev: i64,
    /// The ReplicaSet of the current template, if there is one.
    new_rs: Option<&'a ReplicaSet>,
    /// The others, oldest first.
    olds: Vec<&'a ReplicaSet>,
    /// The changes to ReplicaSets this pass, by name; one Update each at the end.
    next: BTreeMap<String, ReplicaSet>,
    out: Vec<Action>,
    scaled: bool,
    created_name: Option<String>,
}

impl<'a, 'p> Pass<'a, 'p> {
    fn new(
        d: &'a Deployment,
        rss: &'a [&'a ReplicaSet],
        pods: &'a PodsByOwner<'p>,
        now: u64,
    ) -> Self {
        let replicas = d.spec.replicas.unwrap_or(1).max(0);
        let (surge, max_unavailable) = if is_recreate(d) {
            (0, replicas)
        } else {
            fenceposts(d)
        };
        let new_rs = rss
            .iter()
            .copied()
            .find(|rs| rs.template_without_hash() == d.spec.template);
        let mut olds: Vec<&ReplicaSet> = rss
            .iter()
            .copied()
            .filter(|rs| new_rs.is_none_or(|n| n.metadata.uid != rs.metadata.uid))
            .collect();
        olds.sort_by_key(|rs| (rs.revision(), rs.metadata.creation_timestamp.clone()));
        Pass {
            d,
            rss,
            pods,
            now,
            replicas,
            surge,
            max_unavailable,
            min_ready: d.spec.min_ready_seconds.unwrap_or(0) as i64,
            max_rev: rss.iter().map(|r| r.revision()).max().unwrap_or(0),
            new_rs,
            olds,
            next: BTreeMap::new(),
            out: Vec::new(),
            scaled: false,
            created_name: None,
        }
    }

    /// Pods of a ReplicaSet that pass a test.
    fn count(&self, rs: &ReplicaSet, f: &dyn Fn(&skiff_api::pod::Pod) -> bool) -> i32 {
        self.pods
            .of(rs.metadata.uid.as_deref())
            .iter()
            .filter(|p| f(p))
            .count() as i32
    }

    fn available_of(&self, rs: &ReplicaSet) -> i32 {
        let (min_ready, now) = (self.min_ready, self.now);
        self.count(rs, &|p| is_available(p, min_ready, now))
    }

    fn active_of(&self, rs: &ReplicaSet) -> i32 {
        self.count(rs, &is_active)
    }

    /// A ReplicaSet's replicas as this pass leaves them.
    fn spec_now(&self, rs: &ReplicaSet) -> i32 {
        self.next
            .get(rs.metadata.name())
            .map_or(spec_of(rs), spec_of)
    }

    fn sum(&self, rss: &[&ReplicaSet], f: impl Fn(&Self, &ReplicaSet) -> i32) -> i32 {
        rss.iter().map(|r| f(self, r)).sum()
    }

    /// Scales a ReplicaSet to `n`, with the annotations and the event Kubernetes writes.
    fn set_spec(&mut self, rs: &ReplicaSet, n: i32) {
        let cur = self.spec_now(rs);
        if cur == n {
            return;
        }
        let (replicas, surge) = (self.replicas, self.surge);
        let e = self
            .next
            .entry(rs.metadata.name().to_string())
            .or_insert_with(|| rs.clone());
        e.spec.replicas = Some(n);
        e.metadata.annotations.insert(
            "deployment.kubernetes.io/desired-replicas".into(),
            replicas.to_string(),
        );
        e.metadata.annotations.insert(
            "deployment.kubernetes.io/max-replicas".into(),
            (replicas + surge).to_string(),
        );
        let verb = if n > cur { "up" } else { "down" };
        self.out.push(event(
            Kind::Deployment,
            &self.d.metadata,
            false,
            "ScalingReplicaSet",
            format!(
                "Scaled {verb} replica set {} from {cur} to {n}",
                rs.metadata.name()
            ),
        ));
    }

    /// Paused: the current ReplicaSet takes the difference in replicas.
    fn follow_replicas(&mut self) {
        if let Some(n) = self.new_rs {
            let total = self.sum(self.rss, |_, r| spec_of(r));
            if total != self.replicas {
                let want = (spec_of(n) + self.replicas - total).max(0);
                self.set_spec(n, want);
            }
        }
    }

    /// No ReplicaSet has the template yet: creates it, as large as the strategy allows.
    fn create_new(&mut self) {
        let d = self.d;
        let (replicas, surge) = (self.replicas, self.surge);
        let old_spec = self.sum(&self.olds, |_, r| spec_of(r));
        let old_active = self.sum(&self.olds, Self::active_of);
        let initial = if is_recreate(d) {
            if old_spec > 0 || old_active > 0 {
                0
            } else {
                replicas
            }
        } else {
            (replicas + surge - old_spec).clamp(0, replicas)
        };
        let hash = template_hash(&d.spec.template);
        let mut template = d.spec.template.clone();
        template
            .metadata
            .labels
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = d.spec.selector.clone().unwrap_or_default();
        selector
            .match_labels
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{hash}", d.metadata.name());
        let labels = template.metadata.labels.clone();
        let mut annotations = BTreeMap::new();
        annotations.insert(REVISION.to_string(), (self.max_rev + 1).to_string());
        annotations.insert(
            "deployment.kubernetes.io/desired-replicas".into(),
            replicas.to_string(),
        );
        annotations.insert(
            "deployment.kubernetes.io/max-replicas".into(),
            (replicas + surge).to_string(),
        );
        if let Some(c) = d.metadata.annotations.get("kubernetes.io/change-cause") {
            annotations.insert("kubernetes.io/change-cause".into(), c.clone());
        }
        let rs = ReplicaSet {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            metadata: skiff_api::meta::ObjectMeta {
                name: Some(name.clone()),
                namespace: d.metadata.namespace.clone(),
                labels,
                annotations,
                owner_references: vec![controller_ref(Kind::Deployment, &d.metadata)],
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(initial),
                min_ready_seconds: d.spec.min_ready_seconds,
                selector: Some(selector),
                template,
            },
            status: None,
        };
        self.out.push(Action::Create(Object::ReplicaSet(rs)));
        self.out.push(event(
            Kind::Deployment,
            &d.metadata,
            false,
            "ScalingReplicaSet",
            format!("Scaled up replica set {name} to {initial}"),
        ));
        self.created_name = Some(name);
        self.scaled = true;
    }

    /// Recreate: every old pod goes before the new ReplicaSet scales up.
    fn recreate(&mut self, n: &ReplicaSet) {
        let old_spec = self.sum(&self.olds, |_, r| spec_of(r));
        let old_active = self.sum(&self.olds, Self::active_of);
        if old_spec > 0 {
            for o in self.olds.clone() {
                self.set_spec(o, 0);
            }
            self.scaled = true;
        } else if old_active == 0 && spec_of(n) != self.replicas {
            self.set_spec(n, self.replicas);
            self.scaled = true;
        }
    }

    /// RollingUpdate: the new ReplicaSet up within maxSurge, then the old ones down
    /// within maxUnavailable.
    fn roll(&mut self, n: &ReplicaSet) {
        let (replicas, surge) = (self.replicas, self.surge);
        let new_spec = spec_of(n);
        let total = self.sum(self.rss, |_, r| spec_of(r));
        if new_spec > replicas {
            self.set_spec(n, replicas);
            self.scaled = true;
        } else if new_spec < replicas && total < replicas + surge {
            let up = (replicas + surge - total).min(replicas - new_spec);
            self.set_spec(n, new_spec + up);
            self.scaled = true;
        }
        let old_spec = self.sum(&self.olds, |_, r| spec_of(r));
        if self.scaled || old_spec == 0 {
            return;
        }
        // Scale old ReplicaSets down only as far as availability allows.
        let min_available = replicas - self.max_unavailable;
        let new_unavailable = spec_of(n) - self.available_of(n);
        let mut budget = total - min_available - new_unavailable;
        if budget <= 0 {
            return;
        }
        // First their pods that are not available anyway, oldest first.
        for o in self.olds.clone() {
            if budget <= 0 {
                break;
            }
            let cur = self.spec_now(o);
            let unhealthy = (cur - self.available_of(o)).max(0);
            let down = unhealthy.min(budget).min(cur);
            if down > 0 {
                self.set_spec(o, cur - down);
                budget -= down;
                self.scaled = true;
            }
        }
        // Then available ones, keeping minAvailable.
        let total_available = self.sum(self.rss, Self::available_of);
        let mut can = total_available - min_available;
        for o in self.olds.clone() {
            if can <= 0 {
                break;
            }
            let cur = self.spec_now(o);
            let down = cur.min(can);
            if down > 0 {
                self.set_spec(o, cur - down);
                can -= down;
                self.scaled = true;
            }
        }
    }

    /// History: old ReplicaSets with nothing left beyond revisionHistoryLimit go, oldest first.
    fn prune_history(&mut self) {
        let limit = self.d.spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        let empty: Vec<&ReplicaSet> = self
            .olds
            .iter()
            .copied()
            .filter(|rs| {
                self.spec_now(rs) == 0 && self.active_of(rs) == 0 && !deleting(&rs.metadata)
            })
            .collect();
        if empty.len() > limit {
            for rs in &empty[..empty.len() - limit] {
                self.out.push(super::delete(Kind::ReplicaSet, &rs.metadata));
            }
        }
    }

    /// The counts, and the Available and Progressing conditions.
    fn status(&mut self) -> DeploymentStatus {
        let (d, now, replicas) = (self.d, self.now, self.replicas);
        let new_rs = self.new_rs;
        let current = |rs: &ReplicaSet| new_rs.is_some_and(|n| n.metadata.uid == rs.metadata.uid);
        let all_active = self.sum(self.rss, Self::active_of);
        let updated: i32 = self
            .rss
            .iter()
            .filter(|r| current(r))
            .map(|r| self.active_of(r))
            .sum();
        let ready = self.sum(self.rss, |s, r| {
            s.count(r, &|p| is_active(p) && is_ready(p))
        });
        let available = self.sum(self.rss, Self::available_of);
        let prev = d.status.clone().unwrap_or_default();
        let mut status = DeploymentStatus {
            observed_generation: d.metadata.generation,
            replicas: Some(all_active),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            unavailable_replicas: Some((replicas - available).max(0)),
            conditions: prev.conditions.clone(),
        };
        if available >= replicas - self.max_unavailable {
            set_condition(
                &mut status.conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
            );
        } else {
            set_condition(
                &mut status.conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
            );
        }
        let old_spec_after: i32 = self.sum(&self.olds, Self::spec_now);
        let complete = new_rs.is_some()
            && updated == replicas
            && all_active == replicas
            && available == replicas
            && old_spec_after == 0;
        let progressed = self.scaled
            || prev.updated_replicas != status.updated_replicas
            || prev.available_replicas != status.available_replicas
            || prev.ready_replicas != status.ready_replicas
            || prev.replicas != status.replicas;
        self.progressing(&mut status, complete, progressed);
        status
    }

    /// The Progressing condition: paused, complete, progressing, or past its deadline.
    fn progressing(&mut self, status: &mut DeploymentStatus, complete: bool, progressed: bool) {
        let (d, now) = (self.d, self.now);
        let rs_name = self
            .created_name
            .clone()
            .or_else(|| self.new_rs.map(|n| n.metadata.name().to_string()))
            .unwrap_or_default();
        if d.spec.paused == Some(true) {
            set_condition(
                &mut status.conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                now,
            );
        } else if complete {
            set_condition(
                &mut status.conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet {rs_name:?} has successfully progressed."),
                now,
            );
        } else if progressed || !status.conditions.iter().any(|c| c.type_ == "Progressing") {
            set_condition(
                &mut status.conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet {rs_name:?} is progressing."),
                now,
            );
            if let Some(c) = status
                .conditions
                .iter_mut()
                .find(|c| c.type_ == "Progressing")
            {
                c.last_update_time = Some(rfc3339(now));
            }
        } else if let Some(deadline) = d.spec.progress_deadline_seconds {
            let last = status
                .conditions
                .iter()
                .find(|c| {
                    c.type_ == "Progressing" && c.reason.as_deref() == Some("ReplicaSetUpdated")
                })
                .and_then(|c| c.last_update_time.as_deref())
                .and_then(parse_rfc3339);
            if last.is_some_and(|t| t + deadline.max(0) as u64 <= now) {
                set_condition(
                    &mut status.conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &format!("ReplicaSet {rs_name:?} has timed out progressing."),
                    now,
                );
                self.out.push(event(
                    Kind::Deployment,
                    &d.metadata,
                    true,
                    "ProgressDeadlineExceeded",
                    format!(
                        "Deployment {:?} has timed out progressing.",
                        d.metadata.name()
                    ),
                ));
            }
        }
    }

    /// The ReplicaSet updates, then the Deployment's revision and status.
    fn finish(self, status: DeploymentStatus) -> Vec<Action> {
        let (d, max_rev) = (self.d, self.max_rev);
        let mut out = self.out;
        for (_, rs) in self.next {
            out.push(Action::Update(Object::ReplicaSet(rs)));
        }
        // The Deployment carries the revision of its current ReplicaSet.
        let rev = match self.new_rs {
            Some(n) if n.revision() >= max_rev && n.revision() > 0 => n.revision(),
            _ => max_rev + 1,
        };
        if d.metadata.annotations.get(REVISION) != Some(&rev.to_string()) {
            let mut nd = d.clone();
            nd.metadata
                .annotations
                .insert(REVISION.into(), rev.to_string());
            nd.status = Some(status);
            out.push(Action::Update(Object::Deployment(nd)));
        } else if d.status.as_ref() != Some(&status) {
            let mut nd = d.clone();
            nd.status = Some(status);
            out.push(Action::Status(Object::Deployment(nd)));
        }
        out
    }
}

fn spec_of(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}
