//! Kubernetes' LimitRanger and ResourceQuota admission for new objects: a pod gets its
//! namespace's LimitRange defaults (said in the `kubernetes.io/limit-ranger` annotation)
//! and is refused outside their bounds; any object that would take its namespace past a
//! ResourceQuota is refused with Kubernetes' `exceeded quota` message. Quota checks and
//! the write that follows are serialized, so two creates cannot both take the last room.

use super::*;
use skiff_api::quota::{
    apply_limit_defaults, counted_kinds, exceeded, limit_problems, object_usage, unstated,
    ResourceQuota,
};
use std::collections::BTreeMap;

/// Held from a quota check until its write is done.
static QUOTA_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The annotation the LimitRanger writes on the pods it gave defaults.
pub(super) const LIMIT_RANGER: &str = "kubernetes.io/limit-ranger";

fn forbidden_object(o: &Object, why: &str) -> ApiError {
    err(
        ErrorCode::Forbidden,
        format!(
            "{} {:?} is forbidden: {why}",
            o.kind().info().plural,
            o.meta().name.as_deref().unwrap_or("")
        ),
    )
}

impl<S: Store> Api<S> {
    fn in_namespace<T>(
        &self,
        kind: Kind,
        ns: &str,
        pick: impl Fn(Object) -> Option<T>,
    ) -> Result<Vec<T>, ApiError> {
        let (_, all) = self.store.list(kind, Some(ns)).map_err(store_err)?;
        Ok(all
            .iter()
            .filter_map(|s| stored_object(s).ok().and_then(&pick))
            .collect())
    }

    /// LimitRanger: a new pod's defaults and bounds.
    pub(super) fn admit_limits(&self, o: &mut Object) -> Result<(), ApiError> {
        let Object::Pod(p) = o else {
            return Ok(());
        };
        let ns = p.metadata.namespace().to_string();
        let ranges = self.in_namespace(Kind::LimitRange, &ns, |o| match o {
            Object::LimitRange(r) => Some(r),
            _ => None,
        })?;
        if ranges.is_empty() {
            return Ok(());
        }
        if let Some(said) = apply_limit_defaults(&ranges, p) {
            p.metadata.annotations.insert(LIMIT_RANGER.into(), said);
        }
        let problems = limit_problems(&ranges, p);
        if problems.is_empty() {
            return Ok(());
        }
        let why = format!("[{}]", problems.join(", "));
        Err(forbidden_object(o, &why))
    }

    /// ResourceQuota: whether a new object fits its namespace's quotas. The guard returned
    /// is to be held until the object is written.
    pub(super) async fn admit_quota(
        &self,
        o: &Object,
    ) -> Result<Option<tokio::sync::MutexGuard<'static, ()>>, ApiError> {
        if !o.kind().namespaced() {
            return Ok(None);
        }
        let ns = o.meta().namespace().to_string();
        let quotas = self.in_namespace(Kind::ResourceQuota, &ns, |o| match o {
            Object::ResourceQuota(q) => Some(q),
            _ => None,
        })?;
        let new = object_usage(o);
        let touched = |q: &ResourceQuota| {
            q.spec
                .hard
                .keys()
                .any(|k| new.get(k).is_some_and(|a| *a > 0))
        };
        if !quotas.iter().any(touched) {
            return Ok(None);
        }
        let guard = QUOTA_LOCK.lock().await;
        for q in quotas.iter().filter(|q| touched(q)) {
            if let Object::Pod(p) = o {
                if let Some(why) = unstated(&q.spec.hard, p) {
                    return Err(forbidden_object(
                        o,
                        &format!("failed quota: {}: {why}", q.metadata.name()),
                    ));
                }
            }
            let used = self.quota_used(q, &ns)?;
            if let Some(why) = exceeded(q, &used, &new) {
                return Err(forbidden_object(o, &why));
            }
        }
        Ok(Some(guard))
    }

    /// What a namespace's objects use of a quota's resources (nano-units).
    pub(super) fn quota_used(
        &self,
        q: &ResourceQuota,
        ns: &str,
    ) -> Result<BTreeMap<String, i128>, ApiError> {
        let mut used: BTreeMap<String, i128> = BTreeMap::new();
        for obj in self.quota_objects(q, ns)? {
            for (k, v) in object_usage(&obj) {
                *used.entry(k).or_default() += v;
            }
        }
        Ok(used)
    }

    /// The objects of a namespace a quota's resources count.
    pub fn quota_objects(&self, q: &ResourceQuota, ns: &str) -> Result<Vec<Object>, ApiError> {
        let mut kinds: Vec<Kind> = q.spec.hard.keys().flat_map(|k| counted_kinds(k)).collect();
        kinds.sort_by_key(|k| k.name());
        kinds.dedup();
        let mut out = Vec::new();
        for kind in kinds {
            out.extend(self.in_namespace(kind, ns, Some)?);
        }
        Ok(out)
    }
}
