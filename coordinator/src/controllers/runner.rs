//! The thin shell around the controllers and the scheduler: a cache fed by the store's
//! watches, passes that run every controller over it, and the writes they ask for
//! (performed concurrently, deletions first, their results put back into the cache at
//! once so the next pass never repeats them).

use super::budget::{self, CpuBudget};
use super::{
    daemonset, deployment, endpoints, gc, ingress, job, node_lifecycle, replicaset, statefulset,
    Action, ByController, Cache, PodsByOwner, WATCHED,
};
use crate::requests::{Api, DeleteOptions, Deleted};
use crate::sched::queue::{self, Queue};
use crate::sched::volumes::VolumeView;
use crate::sched::{NodeInfo, PodInfo, Scheduler, Strategy};
use crate::store::{EventType, Store, Stored, WatchFilter, WatchStream};
use skiff_api::core::{Endpoints, Node, Service};
use skiff_api::meta::ObjectReference;
use skiff_api::networking::Ingress;
use skiff_api::pod::Pod;
use skiff_api::policy::PodDisruptionBudget;
use skiff_api::storage::{PersistentVolume, PersistentVolumeClaim, StorageClass};
use skiff_api::util::rfc3339;
use skiff_api::wire::ErrorCode;
use skiff_api::workloads::{DaemonSet, Deployment, Job, ReplicaSet, StatefulSet};
use skiff_api::{Kind, Object, ObjectKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How the controllers are configured.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Node lifecycle.
    pub lifecycle: node_lifecycle::Lifecycle,
    /// The scheduler's resource scoring.
    pub strategy: Strategy,
    /// Cores of CPU time the coordinator may use while the controllers write
    /// ([`budget`]); zero: no limit.
    pub cpu_budget: f64,
    /// How often each HorizontalPodAutoscaler syncs (seconds; Kubernetes: 15).
    pub hpa_sync: u64,
}

/// The default [`Config::cpu_budget`]: the budget paces the writes the controllers
/// start, and the work those writes cause afterwards (their delivery to nodes, the
/// replies) trails them, so the process as a whole stays under one core.
pub const DEFAULT_CPU_BUDGET: f64 = 0.8;

impl Default for Config {
    fn default() -> Self {
        Config {
            lifecycle: node_lifecycle::Lifecycle {
                grace: Duration::from_secs(40),
                eviction_timeout: 300,
            },
            strategy: Strategy::LeastAllocated,
            cpu_budget: DEFAULT_CPU_BUDGET,
            hpa_sync: 15,
        }
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What changed in the cache, from a watch.
enum Msg {
    /// A kind's full list.
    Reset(Kind, Vec<Stored>),
    /// One change.
    Event(Arc<crate::store::StoreEvent>),
}

/// The controller manager and scheduler.
pub struct Manager<S: Store> {
    api: Arc<Api<S>>,
    /// What the controllers see.
    pub cache: Cache,
    cfg: Config,
    started: Instant,
    /// The scheduler should look again at pods it could not place (the cluster changed).
    sched_dirty: bool,
    /// Pending pods: which to try, in what order, when to retry (next to the scheduler).
    queue: Queue,
    /// Lease ages to use instead of the coordinator's (tests).
    pub lease_override: Option<HashMap<String, Option<Duration>>>,
    /// How long the last pass took to decide (not to write).
    last_compute: Duration,
    /// Events per object, as Kubernetes' event recorder limits them.
    spam: super::spam::SpamFilter<(ObjectKey, String)>,
    /// The watches' changes, once `run` started them.
    changes: Option<mpsc::Receiver<Msg>>,
    /// Changes were taken in while a pass wrote: the next pass should not wait for more.
    changed_while_writing: bool,
    /// Paces the writes.
    budget: CpuBudget,
    /// Each autoscaler's last sync and recommendations.
    autoscalers: super::hpa::Autoscalers,
    /// The CronJob events already written.
    cronjobs: super::cronjob::Recorded,
    /// The zone of CronJobs that name none: the coordinator's (`TZ`, `/etc/localtime`).
    local_tz: jiff::tz::TimeZone,
}

fn parse(s: &Stored) -> Option<Object> {
    Object::from_json(s.key.kind, &s.json).ok()
}

impl<S: Store> Manager<S> {
    /// A manager over the API's store.
    pub fn new(api: Arc<Api<S>>, cfg: Config) -> Manager<S> {
        Manager {
            api,
            cache: Cache::default(),
            cfg,
            started: Instant::now(),
            sched_dirty: true,
            queue: Queue::default(),
            lease_override: None,
            last_compute: Duration::ZERO,
            spam: Default::default(),
            changes: None,
            changed_while_writing: false,
            budget: CpuBudget::new(cfg.cpu_budget),
            autoscalers: Default::default(),
            cronjobs: Default::default(),
            local_tz: jiff::tz::TimeZone::system(),
        }
    }

    /// Reads every watched kind from the store into the cache.
    pub fn resync(&mut self) -> Result<(), crate::store::StoreError> {
        for kind in WATCHED {
            let (_, items) = self.api.store.list(kind, None)?;
            self.reset(kind, items);
        }
        self.sched_dirty = true;
        Ok(())
    }

    fn reset(&mut self, kind: Kind, items: Vec<Stored>) {
        let items = items
            .iter()
            .filter_map(|s| Some((s.revision, parse(s)?)))
            .collect();
        self.cache.replace_kind(kind, items);
    }

    fn apply_event(&mut self, e: &crate::store::StoreEvent) {
        let key = &e.object.key;
        let volumes = matches!(
            key.kind,
            Kind::PersistentVolume | Kind::PersistentVolumeClaim | Kind::StorageClass
        );
        if matches!(key.kind, Kind::Node)
            || volumes
            || (key.kind == Kind::Pod && e.kind != EventType::Added)
        {
            self.sched_dirty = true;
        }
        match e.kind {
            EventType::Deleted => self.cache.remove(key, e.revision),
            _ => {
                if self.cache.holds(key, e.revision) {
                    return;
                }
                if let Some(o) = parse(&e.object) {
                    self.cache.put(e.revision, o);
                }
            }
        }
    }

    fn lease_age(&self, node: &str) -> Option<Duration> {
        if let Some(o) = &self.lease_override {
            return o.get(node).copied().flatten();
        }
        // Never heard of since this coordinator started: count from its start, so a
        // restart does not turn every node Unknown at once.
        Some(
            self.api
                .nodes
                .last_renewal(node)
                .map_or_else(|| self.started.elapsed(), |t| t.elapsed()),
        )
    }

    /// Node lifecycle alone (cheap; run often so leases are noticed within the grace).
    pub fn node_actions(&self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        for n in self.cache.typed::<Node>() {
            out.extend(node_lifecycle::reconcile_node(
                n,
                self.lease_age(n.metadata.name()),
                &self.cfg.lifecycle,
                now,
            ));
        }
        out.extend(node_lifecycle::evictions(
            self.cache.typed::<Node>(),
            self.cache.typed::<Pod>(),
            &self.cfg.lifecycle,
            now,
        ));
        out.extend(node_lifecycle::mark_lost_pods_not_ready(
            self.cache.typed::<Node>(),
            self.cache.typed::<Pod>(),
            now,
        ));
        out
    }

    /// Endpoints for every Service, from the pods of its namespace.
    fn endpoint_actions(cache: &Cache) -> Vec<Action> {
        let mut out = Vec::new();
        if cache.count(Kind::Service) == 0 {
            return out;
        }
        let mut pods: HashMap<&str, Vec<&skiff_api::pod::Pod>> = HashMap::new();
        for p in cache.typed::<Pod>() {
            pods.entry(p.metadata.namespace()).or_default().push(p);
        }
        let eps: HashMap<(&str, &str), &skiff_api::core::Endpoints> = cache
            .typed::<Endpoints>()
            .map(|e| ((e.metadata.namespace(), e.metadata.name()), e))
            .collect();
        for svc in cache.typed::<Service>() {
            let m = &svc.metadata;
            let current = eps.get(&(m.namespace(), m.name())).copied();
            let in_ns = pods.get(m.namespace()).map(Vec::as_slice).unwrap_or(&[]);
            out.extend(endpoints::reconcile(svc, current, in_ns));
        }
        out
    }

    /// Everything every controller wants now.
    pub fn actions(&mut self, now: u64) -> Vec<Action> {
        let cache = &self.cache;
        let pods = PodsByOwner::new(cache);
        let mut out = self.node_actions(now);
        for rs in cache.typed::<ReplicaSet>() {
            out.extend(replicaset::reconcile(rs, &pods, now));
        }
        let rs_by_owner =
            ByController::index(cache.typed::<ReplicaSet>().map(|r| (&r.metadata, r)));
        for d in cache.typed::<Deployment>() {
            let rss = rs_by_owner.of(d.metadata.uid.as_deref());
            out.extend(deployment::reconcile(d, rss, &pods, now));
        }
        // Node views for the DaemonSets and the scheduler, only when either needs them.
        let needed = cache.count(Kind::DaemonSet) > 0
            || cache.typed::<Pod>().any(super::is_pending_schedule);
        let node_infos: Vec<NodeInfo> = if needed {
            cache.typed::<Node>().map(NodeInfo::from_node).collect()
        } else {
            Vec::new()
        };
        for ds in cache.typed::<DaemonSet>() {
            out.extend(daemonset::reconcile(ds, &node_infos, &pods, now));
        }
        if cache.count(Kind::StatefulSet) > 0 {
            let claims: statefulset::Claims<'_> = cache
                .typed::<PersistentVolumeClaim>()
                .map(|c| ((c.metadata.namespace(), c.metadata.name()), c))
                .collect();
            for s in cache.typed::<StatefulSet>() {
                out.extend(statefulset::reconcile(s, &pods, &claims, now));
            }
        }
        for j in cache.typed::<Job>() {
            out.extend(job::reconcile(j, &pods, now));
        }
        out.extend(super::adopt_orphans(cache));
        out.extend(Self::endpoint_actions(cache));
        if cache.count(Kind::Ingress) > 0 {
            let servers: Vec<(&str, &str)> =
                cache.typed::<Node>().filter_map(ingress::server).collect();
            out.extend(
                cache
                    .typed::<Ingress>()
                    .filter_map(|i| ingress::reconcile(i, &servers)),
            );
        }
        out.extend(gc::reconcile(cache, now));
        out.extend(super::storage::pass(cache, now));
        if cache.count(Kind::PodDisruptionBudget) > 0 {
            let scales = super::disruption::scales(
                cache.typed::<ReplicaSet>(),
                cache.typed::<StatefulSet>(),
            );
            let all: Vec<&Pod> = cache.typed::<Pod>().collect();
            for pdb in cache.typed::<PodDisruptionBudget>() {
                let covered: Vec<&Pod> = all
                    .iter()
                    .copied()
                    .filter(|p| super::disruption::covers(pdb, p))
                    .collect();
                out.extend(super::disruption::reconcile(pdb, &covered, &scales, now));
            }
        }
        if cache.count(Kind::HorizontalPodAutoscaler) > 0 || !self.autoscalers.is_empty() {
            let reports = self.api.nodes.reports();
            let sync = self.cfg.hpa_sync;
            out.extend(super::hpa::pass(
                cache,
                &reports,
                &mut self.autoscalers,
                sync,
                now,
            ));
        }
        if cache.count(Kind::CronJob) > 0 {
            let zones = super::cronjob::Zones {
                db: jiff::tz::db(),
                local: &self.local_tz,
            };
            out.extend(super::cronjob::pass(cache, &mut self.cronjobs, &zones, now));
        }
        if cache.count(Kind::ResourceQuota) > 0 {
            out.extend(super::quota::statuses(&self.api, cache));
        }
        drop(pods);
        out.extend(self.schedule(node_infos, now));
        out
    }

    /// The scheduler's part: bindings for pending pods, PodScheduled=False for those that
    /// fit nowhere.
    fn schedule(&mut self, nodes: Vec<NodeInfo>, now: u64) -> Vec<Action> {
        let (gated, pending): (Vec<&Pod>, Vec<&Pod>) = self
            .cache
            .typed::<Pod>()
            .filter(|p| super::is_pending_schedule(p))
            .partition(|p| !p.spec.scheduling_gates.is_empty());
        // Gated pods wait, saying so, until their gates are removed.
        let gated = gated.iter().filter_map(|p| queue::gated_status(p, now));
        let mut out: Vec<Action> = gated.map(|p| Action::Status(Object::Pod(p))).collect();
        let retry = std::mem::take(&mut self.sched_dirty);
        let pending = self.queue.take(pending, retry, Instant::now());
        if pending.is_empty() {
            return out;
        }
        let bound: Vec<PodInfo> = self
            .cache
            .typed::<Pod>()
            .filter(|p| p.spec.node_name.is_some() && !super::is_finished(p))
            .map(PodInfo::from_pod)
            .collect();
        let infos: Vec<PodInfo> = pending.iter().map(|p| PodInfo::from_pod(p)).collect();
        let volumes = infos.iter().any(|p| !p.claims.is_empty()).then(|| {
            let users: Vec<&PodInfo> = bound.iter().filter(|p| !p.claims.is_empty()).collect();
            VolumeView::new(
                self.cache.typed::<PersistentVolume>(),
                self.cache.typed::<PersistentVolumeClaim>(),
                self.cache.typed::<StorageClass>(),
                &users,
            )
        });
        let mut sched = Scheduler::new(nodes, bound, self.cfg.strategy);
        sched.volumes = volumes;
        let tried = Instant::now();
        for (p, info) in pending.into_iter().zip(infos) {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            match sched.schedule(&info) {
                crate::sched::Decision::Bind(node) => {
                    let node_obj = self
                        .cache
                        .typed::<Node>()
                        .find(|n| n.metadata.name() == node);
                    let plan = sched.plan_volumes(&info, &node, node_obj);
                    out.extend(plan.actions);
                    if plan.wait {
                        // A volume is being reserved: the pod is bound next pass.
                        self.sched_dirty = true;
                        continue;
                    }
                    self.queue.bound(&uid);
                    let key = super::key_of(Kind::Pod, &p.metadata);
                    let seen = self.cache.get(&key).cloned();
                    out.push(Action::Bind {
                        key,
                        uid,
                        node,
                        seen,
                        volumes: plan.paths,
                    });
                }
                crate::sched::Decision::Unschedulable { message, .. } => {
                    self.queue.unschedulable(uid, tried);
                    if let Some(next) = queue::unschedulable_status(p, &message, now) {
                        out.push(Action::Status(Object::Pod(next)));
                        out.push(super::event(
                            Kind::Pod,
                            &p.metadata,
                            true,
                            "FailedScheduling",
                            message,
                        ));
                    }
                }
            }
        }
        out
    }

    /// Performs actions (deletions first; each rank's concurrently) and puts what they
    /// wrote into the cache. Returns how many writes succeeded.
    pub async fn execute(&mut self, mut actions: Vec<Action>) -> usize {
        let now = Instant::now();
        actions.retain(|a| match a {
            Action::Event { about, uid, .. } => self.spam.allow(&(about.clone(), uid.clone()), now),
            _ => true,
        });
        actions.sort_by_key(Action::rank);
        let mut done = 0;
        let mut actions = actions.into_iter().peekable();
        while let Some(rank) = actions.peek().map(Action::rank) {
            let mut set = tokio::task::JoinSet::new();
            while let Some(a) = actions.next_if(|a| a.rank() == rank) {
                self.pace().await;
                let api = self.api.clone();
                set.spawn(async move { perform(&api, a).await });
                // Bound how many writes are in flight at once.
                if set.len() >= 256 {
                    done += self.absorb_next(&mut set).await.unwrap_or(0);
                }
            }
            while let Some(n) = self.absorb_next(&mut set).await {
                done += n;
            }
        }
        done
    }

    /// Waits while the process spent more CPU time than its budget allows.
    async fn pace(&mut self) {
        loop {
            let wait = self
                .budget
                .observe(Instant::now(), budget::process_cpu_time());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Applies the changes the watches have delivered so far; whether there were any.
    /// Called while a pass's writes are in flight too: in a burst those writes' own events
    /// arrive by the thousand, and left in the queue until the pass ends each would hold
    /// its object's text.
    fn take_changes(&mut self) -> bool {
        let Some(mut rx) = self.changes.take() else {
            return false;
        };
        let mut any = false;
        while let Ok(m) = rx.try_recv() {
            self.take(m);
            any = true;
        }
        self.changes = Some(rx);
        any
    }

    /// Waits for a write to finish, absorbs it and every other finished one, then takes
    /// in the watch events: in that order, because a write hands back its object and an
    /// event would have it parsed from its text. How many writes succeeded; `None` when
    /// none was in flight.
    async fn absorb_next(&mut self, set: &mut tokio::task::JoinSet<WriteResult>) -> Option<usize> {
        let first = set.join_next().await?;
        let mut done = 0;
        let finished = std::iter::once(first).chain(std::iter::from_fn(|| set.try_join_next()));
        for r in finished.flatten() {
            done += self.absorb(r);
        }
        self.changed_while_writing |= self.take_changes();
        Some(done)
    }

    fn absorb(&mut self, r: WriteResult) -> usize {
        match r {
            Ok(Some(Change::Put(s, written))) => {
                // The write's own watch event may have been taken in already.
                if !self.cache.holds(&s.key, s.revision) {
                    debug_assert!(
                        written.is_none() || written.as_deref() == parse(&s).as_ref(),
                        "the object written is the object stored"
                    );
                    if let Some(o) = written.map(|o| *o).or_else(|| parse(&s)) {
                        self.cache.put(s.revision, o);
                    }
                }
                1
            }
            Ok(Some(Change::Gone(s))) => {
                self.cache.remove(&s.key, s.revision);
                1
            }
            Ok(None) => 1,
            Err(_) => 0,
        }
    }

    /// One pass: every controller, then their writes. Returns how many writes were made.
    pub async fn pass(&mut self, now: u64) -> usize {
        let t = Instant::now();
        let actions = self.actions(now);
        self.last_compute = t.elapsed();
        self.execute(actions).await
    }

    /// Runs until the task is dropped: watches feed the cache; a pass runs on changes
    /// (gathered for a few milliseconds) and every second; node leases are checked four
    /// times a second.
    pub async fn run(mut self) {
        let (tx, mut rx) = mpsc::channel::<Msg>(65_536);
        for kind in WATCHED {
            tokio::spawn(watch_kind(self.api.clone(), kind, tx.clone()));
        }
        drop(tx);
        // Nothing runs before every kind was listed once: a controller seeing no pods
        // would create them all again.
        let mut listed = std::collections::HashSet::new();
        while listed.len() < WATCHED.len() {
            match rx.recv().await {
                Some(Msg::Reset(kind, items)) => {
                    self.reset(kind, items);
                    listed.insert(kind);
                }
                Some(Msg::Event(e)) => self.apply_event(&e),
                None => return,
            }
        }
        self.changes = Some(rx);
        tracing::info!("controllers and scheduler running");
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_pass = Duration::ZERO;
        let mut lease_tick = tokio::time::interval(Duration::from_millis(250));
        lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // What arrived while the last writes were in flight was taken in then: that
            // counts as a change that just came.
            let mut changed = std::mem::take(&mut self.changed_while_writing);
            let changes = self.changes.as_mut().expect("set above");
            let full = changed
                || tokio::select! {
                    m = changes.recv() => {
                        let Some(m) = m else { return };
                        self.take(m);
                        changed = true;
                        true
                    }
                    _ = tick.tick() => true,
                    _ = lease_tick.tick() => false,
                };
            if changed {
                // Gather what arrives together into one pass; in a burst, for as long as
                // the last pass computed, so computing takes at most about half a core.
                tokio::time::sleep(last_pass.max(Duration::from_millis(5))).await;
                self.take_changes();
            }
            let now = now_secs();
            if full {
                self.pass(now).await;
                last_pass = self.last_compute.min(Duration::from_millis(500));
            } else {
                let a = self.node_actions(now);
                if !a.is_empty() {
                    self.execute(a).await;
                }
            }
        }
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Reset(kind, items) => {
                self.reset(kind, items);
                self.sched_dirty = true;
            }
            Msg::Event(e) => self.apply_event(&e),
        }
    }
}

/// Lists a kind and follows its changes, relisting when the watch falls behind.
async fn watch_kind<S: Store>(api: Arc<Api<S>>, kind: Kind, tx: mpsc::Sender<Msg>) {
    loop {
        let (rev, items) = match api.store.list(kind, None) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(%kind, error = %e, "controllers: listing");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if tx.send(Msg::Reset(kind, items)).await.is_err() {
            return;
        }
        let filter = WatchFilter {
            kind,
            namespace: None,
            selector: Default::default(),
        };
        let mut w = match api.store.watch(filter, rev) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(%kind, error = %e, "controllers: watching");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match w.next().await {
                Ok(e) => {
                    if tx.send(Msg::Event(e)).await.is_err() {
                        return;
                    }
                }
                Err(crate::store::StoreError::Closed) => return,
                Err(e) => {
                    tracing::debug!(%kind, error = %e, "controllers: watch ended; relisting");
                    break;
                }
            }
        }
    }
}

/// What one performed action did.
type WriteResult = Result<Option<Change>, skiff_api::wire::ApiError>;

/// What a write left in the store.
pub enum Change {
    /// The object's new state, and the object itself when the write had it at hand (its
    /// text need not be parsed again).
    Put(Stored, Option<Box<Object>>),
    /// The object is gone (its last state).
    Gone(Stored),
}

impl From<Deleted> for Change {
    fn from(d: Deleted) -> Change {
        match d {
            Deleted::Marked(s) => Change::Put(s, None),
            Deleted::Gone(s) => Change::Gone(s),
        }
    }
}

/// The Event a controller's [`Action::Event`] writes.
fn event_object(
    about: &ObjectKey,
    uid: String,
    warning: bool,
    reason: String,
    message: String,
) -> skiff_api::core::Event {
    let involved = ObjectReference {
        api_version: Some(about.kind.info().api_version.into()),
        kind: Some(about.kind.name().into()),
        namespace: (!about.namespace.is_empty()).then(|| about.namespace.clone()),
        name: Some(about.name.clone()),
        uid: Some(uid),
        ..Default::default()
    };
    let component = if about.kind == Kind::Pod {
        "default-scheduler"
    } else {
        "skiff-controller-manager"
    };
    let mut ev = skiff_api::core::Event::new(
        involved,
        if warning { "Warning" } else { "Normal" },
        reason,
        message,
        rfc3339(now_secs()),
        skiff_api::core::EventSource {
            component: Some(component.into()),
            host: None,
        },
    );
    ev.metadata.generate_name = Some(format!("{}.", about.name));
    ev
}

/// Performs one action against the API.
async fn perform<S: Store>(api: &Api<S>, a: Action) -> WriteResult {
    let r = match a {
        Action::Create(o) => api
            .create_object(o)
            .await
            .map(|(s, o)| Some(Change::Put(s, Some(Box::new(o))))),
        Action::Update(o) => api
            .update_object(o, false)
            .await
            .map(|(s, o)| Some(Change::Put(s, Some(Box::new(o))))),
        Action::Status(o) => api
            .update_object(o, true)
            .await
            .map(|(s, o)| Some(Change::Put(s, Some(Box::new(o))))),
        Action::Delete {
            key,
            uid,
            propagation,
            force,
        } => api
            .delete_object(
                &key,
                DeleteOptions {
                    uid: Some(&uid),
                    force,
                    propagation,
                    ..Default::default()
                },
            )
            .await
            .map(|d| Some(d.into())),
        Action::DeleteUnless {
            key,
            uid,
            unless,
            force,
        } => {
            for (k, u) in &unless {
                match api.store.get(k) {
                    Ok(Some(s)) => {
                        let live_uid = parse(&s).and_then(|o| o.meta().uid.clone());
                        if u.is_none() || live_uid == *u {
                            return Ok(None);
                        }
                    }
                    Ok(None) => {}
                    Err(_) => return Ok(None),
                }
            }
            api.delete_object(
                &key,
                DeleteOptions {
                    uid: Some(&uid),
                    force,
                    ..Default::default()
                },
            )
            .await
            .map(|d| Some(d.into()))
        }
        Action::RemoveFinalizer {
            key,
            uid,
            finalizer,
        } => api
            .remove_finalizer(&key, &uid, &finalizer)
            .await
            .map(|d| Some(d.into())),
        Action::Bind {
            key,
            uid,
            node,
            seen,
            volumes,
        } => api
            .bind_object(
                &key,
                &uid,
                &node,
                &volumes,
                seen.as_ref().map(|e| (e.revision, &*e.object)),
            )
            .await
            .map(|(s, o)| Some(Change::Put(s, o.map(Box::new)))),
        Action::Event {
            about,
            uid,
            warning,
            reason,
            message,
        } => {
            let ev = event_object(&about, uid, warning, reason, message);
            // Events are not cached: nothing reads them back.
            api.create(Object::Event(ev)).await.map(|_| None)
        }
    };
    r.map_err(|e| {
        if !matches!(
            e.code,
            ErrorCode::Conflict | ErrorCode::NotFound | ErrorCode::AlreadyExists
        ) {
            tracing::warn!(error = %e, "controller write failed");
        }
        e
    })
}
