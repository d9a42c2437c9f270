//! What the server does to an object between decoding and storing it, by kind (as
//! Kubernetes' registry strategies do): the system fields it owns, `generation` from the
//! spec, status kept apart from spec, Service addresses and node ports.

use super::*;

pub(super) type Held = std::collections::HashMap<ObjectKey, crate::services::Holding>;

/// Notes what a Service holds after its write was acknowledged.
pub(super) fn record_service(held: Option<&mut Option<Held>>, key: &ObjectKey, o: &Object) {
    if let (Some(Some(held)), Object::Service(svc)) = (held, o) {
        held.insert(key.clone(), crate::services::Holding::of(&svc.spec));
    }
}

/// Annotations the system writes; apply keeps them.
pub(super) fn system_annotation(k: &str) -> bool {
    k.starts_with("deployment.kubernetes.io/")
        || k.starts_with("skiff.io/")
        || k.starts_with("kubectl.kubernetes.io/restartedAt")
}

pub(super) fn check_update(current: &Object, next: &Object) -> Result<(), ApiError> {
    let errs = validate_update(current, next);
    if errs.is_empty() {
        Ok(())
    } else {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        Err(err(
            ErrorCode::Invalid,
            format!(
                "{} {:?} is invalid: {}",
                resource(current.kind()),
                current.meta().name(),
                msgs.join("; ")
            ),
        ))
    }
}

/// Keeps what the server owns (identity, generation, status) from the stored object.
/// An apply (`keep_refs`) also keeps owner references and finalizers a manifest does not
/// name; a replace sets them as given (the garbage collector removes references so).
pub(super) fn carry_system_fields(current: &Object, next: &mut Object, keep_refs: bool) {
    let cm = current.meta().clone();
    let m = next.meta_mut();
    m.uid = cm.uid;
    m.creation_timestamp = cm.creation_timestamp;
    m.generation = cm.generation;
    m.resource_version = cm.resource_version;
    m.deletion_timestamp = cm.deletion_timestamp;
    m.deletion_grace_period_seconds = cm.deletion_grace_period_seconds;
    if keep_refs && m.owner_references.is_empty() {
        m.owner_references = cm.owner_references;
    }
    if keep_refs && m.finalizers.is_empty() {
        m.finalizers = cm.finalizers;
    }
    // As in Kubernetes: a write that sends no managed fields keeps them.
    if m.managed_fields.is_empty() {
        m.managed_fields = cm.managed_fields;
    }
    next.copy_status_from(current);
}

/// `metadata.generation`: 1 on create, one more whenever `spec` changes; absent for
/// kinds without a spec (as in Kubernetes).
pub(super) fn set_generation(current: Option<&Object>, next: &mut Object) {
    if !next.kind().info().has_spec {
        next.meta_mut().generation = None;
        return;
    }
    let generation = match current {
        None => 1,
        Some(c) => {
            let g = c.meta().generation.unwrap_or(1);
            if c.same_spec(next) == Some(true) {
                g
            } else {
                g + 1
            }
        }
    };
    next.meta_mut().generation = Some(generation);
}

impl<S: Store> Api<S> {
    /// For a Service write (none for other kinds): what every Service holds (read from
    /// the store when first needed), locked until the write is acknowledged.
    pub(super) async fn service_lock(
        &self,
        kind: Kind,
    ) -> Result<Option<tokio::sync::MutexGuard<'_, Option<Held>>>, ApiError> {
        if kind != Kind::Service {
            return Ok(None);
        }
        let mut g = self.services.held.lock().await;
        if g.is_none() {
            let (_, all) = self.store.list(Kind::Service, None).map_err(store_err)?;
            let mut m = Held::new();
            for s in &all {
                if let Ok(Object::Service(svc)) = stored_object(s) {
                    m.insert(s.key.clone(), crate::services::Holding::of(&svc.spec));
                }
            }
            *g = Some(m);
        }
        Ok(Some(g))
    }

    /// Gives a Service its ClusterIP and node ports (see [`crate::services::assign`]).
    pub(super) fn assign_service(
        &self,
        held: &Option<Held>,
        key: &ObjectKey,
        next: &mut Object,
        old: Option<&Object>,
    ) -> Result<(), ApiError> {
        let (Object::Service(svc), Some(held)) = (next, held) else {
            return Ok(());
        };
        let old = match old {
            Some(Object::Service(o)) => Some(&o.spec),
            _ => None,
        };
        let mut others = held.iter().filter(|(k, _)| *k != key).map(|(_, h)| h);
        let seed = u32::from_le_bytes(random_bytes4());
        crate::services::assign(&self.services, &mut svc.spec, old, &mut others, seed).map_err(
            |e| {
                err(
                    ErrorCode::Invalid,
                    format!("services {:?} is invalid: {e}", key.name),
                )
            },
        )
    }
}
