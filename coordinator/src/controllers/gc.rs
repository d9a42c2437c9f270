//! Garbage collection by owner references, as Kubernetes' garbage collector:
//! - a dependent whose owners are all gone is deleted (background propagation);
//! - an owner deleted in the foreground (`foregroundDeletion` finalizer) has its dependents
//!   deleted first, and goes itself once none is left;
//! - an owner deleted with orphan propagation (`orphan` finalizer) has its reference removed
//!   from every dependent, then goes.
//!
//! It also removes pods bound to nodes that no longer exist, 40 s after their creation at
//! the earliest (Kubernetes' pod GC and its quarantine).

use super::{key_of, Action, Cache, Propagation, FOREGROUND, ORPHAN};
use crate::HashMap;
use skiff_api::core::Node;
use skiff_api::meta::ObjectMeta;
use skiff_api::pod::Pod;
use skiff_api::{Kind, Object, ObjectKey};
use std::collections::HashSet;

fn owner_key(dep: &ObjectMeta, o: &skiff_api::meta::OwnerReference) -> Option<ObjectKey> {
    let kind = Kind::ALL.iter().copied().find(|k| k.name() == o.kind)?;
    Some(ObjectKey {
        kind,
        namespace: if kind.namespaced() {
            dep.namespace().to_string()
        } else {
            String::new()
        },
        name: o.name.clone(),
    })
}

/// How old a pod bound to a missing node must be before it is removed (Kubernetes'
/// pod GC quarantine).
pub const ORPHAN_QUARANTINE_SECS: u64 = 40;

/// What garbage collection needs across the cache.
pub fn reconcile(cache: &Cache, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    let uids: HashSet<&str> = cache
        .all()
        .filter_map(|o| o.meta().uid.as_deref())
        .collect();
    // Owners waiting for the collector: deleted in the foreground or orphaning.
    let waiting: Vec<(&Object, &str)> = cache
        .all()
        .filter(|o| o.meta().deletion_timestamp.is_some())
        .filter_map(|o| {
            let has = |f: &str| o.meta().finalizers.iter().any(|x| x == f);
            // Orphaning wins when both were asked for.
            [ORPHAN, FOREGROUND]
                .into_iter()
                .find(|f| has(f))
                .map(|f| (o, f))
        })
        .collect();
    if !waiting.is_empty() {
        // Dependents by owner uid (only needed now).
        let mut dependents: HashMap<&str, Vec<&Object>> = HashMap::default();
        for o in cache.all() {
            for r in &o.meta().owner_references {
                dependents.entry(r.uid.as_str()).or_default().push(o);
            }
        }
        for (o, finalizer) in waiting {
            let uid = o.meta().uid.as_deref().unwrap_or("");
            let deps = dependents.get(uid).map_or(&[][..], |v| v.as_slice());
            if deps.is_empty() {
                out.push(Action::RemoveFinalizer {
                    key: o.key(),
                    uid: uid.into(),
                    finalizer: finalizer.into(),
                });
            }
            for d in deps {
                if finalizer == ORPHAN {
                    let mut next = (*d).clone();
                    next.meta_mut().owner_references.retain(|r| r.uid != uid);
                    out.push(Action::Update(next));
                } else if d.meta().deletion_timestamp.is_none() {
                    out.push(Action::Delete {
                        key: d.key(),
                        uid: d.meta().uid.clone().unwrap_or_default(),
                        propagation: Propagation::Foreground,
                        force: false,
                    });
                }
            }
        }
    }
    for o in cache.all() {
        let m = o.meta();
        // Dependents whose owners are all gone.
        if !m.owner_references.is_empty()
            && m.deletion_timestamp.is_none()
            && m.owner_references
                .iter()
                .all(|r| !uids.contains(r.uid.as_str()))
        {
            let unless = m
                .owner_references
                .iter()
                .filter_map(|r| Some((owner_key(m, r)?, Some(r.uid.clone()))))
                .collect();
            out.push(Action::DeleteUnless {
                key: o.key(),
                uid: m.uid.clone().unwrap_or_default(),
                unless,
                force: false,
            });
        }
    }
    // Pods bound to nodes that are gone, once they are older than the quarantine (a
    // node may register just after a pod names it).
    let nodes: HashSet<&str> = cache.typed::<Node>().map(|n| n.metadata.name()).collect();
    for p in cache.typed::<Pod>() {
        let age = p
            .metadata
            .creation_timestamp
            .as_deref()
            .and_then(skiff_api::util::parse_rfc3339)
            .map_or(0, |t| now.saturating_sub(t));
        if age < ORPHAN_QUARANTINE_SECS {
            continue;
        }
        if let Some(n) = &p.spec.node_name {
            if !nodes.contains(n.as_str()) {
                out.push(Action::DeleteUnless {
                    key: key_of(Kind::Pod, &p.metadata),
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    unless: vec![(
                        ObjectKey {
                            kind: Kind::Node,
                            namespace: String::new(),
                            name: n.clone(),
                        },
                        None,
                    )],
                    force: true,
                });
            }
        }
    }
    out
}
