//! Deletion as Kubernetes does it: graceful deletion of pods (marked, then removed once
//! their node confirms), finalizers, and the propagation policies (background, foreground,
//! orphan) the garbage collector finishes.

use super::*;

/// What a delete did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object was marked (`deletionTimestamp`): its node, finalizers or the garbage
    /// collector finish the deletion.
    Marked(Stored),
    /// The object is gone; its last state.
    Gone(Stored),
}

impl Deleted {
    /// The object's state after the delete (its last state when gone).
    pub fn stored(&self) -> &Stored {
        match self {
            Deleted::Marked(s) | Deleted::Gone(s) => s,
        }
    }
}

/// How a delete goes (`Api::delete_object`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOptions<'a> {
    /// Only this revision (a `resourceVersion` precondition).
    pub rv: Option<u64>,
    /// Only the object with this uid.
    pub uid: Option<&'a str>,
    /// A pod's grace period, instead of its `terminationGracePeriodSeconds`.
    pub grace: Option<i64>,
    /// At once, without the node's graceful stop (pods).
    pub force: bool,
    /// What becomes of the objects it owns.
    pub propagation: Propagation,
    /// The pod's node confirms it stopped the pod.
    pub by_node: bool,
}

/// What a read-modify-write decided (`Api::rewrite`).
pub(super) enum Step {
    /// Write this object in place of the one read.
    Put(Box<Object>),
    /// Delete the object read.
    Delete,
    /// Nothing to write: the object read is the answer.
    Keep,
}

/// What marking a pod for its node to stop did.
pub(super) enum PodMark {
    /// Marked (or a shorter grace period set): write it.
    Marked(Box<skiff_api::pod::Pod>),
    /// Already terminating with a grace period no longer than asked.
    Already,
    /// On no node: nothing will stop it, so it goes at once.
    Unbound,
}

/// Marks a pod bound to a node as terminating (`deletionTimestamp`, grace period).
pub(super) fn mark_pod(pod: &skiff_api::pod::Pod, grace: Option<i64>) -> PodMark {
    if pod.spec.node_name.is_none() {
        return PodMark::Unbound;
    }
    let grace = grace
        .or(pod.spec.termination_grace_period_seconds)
        .unwrap_or(30)
        .max(0);
    let m = &pod.metadata;
    // Already terminating: a shorter grace period may replace the longer one.
    if m.deletion_timestamp.is_some() && m.deletion_grace_period_seconds.is_some_and(|g| grace >= g)
    {
        return PodMark::Already;
    }
    let mut pod = pod.clone();
    let m = &mut pod.metadata;
    if m.deletion_timestamp.is_none() {
        m.deletion_timestamp = Some(rfc3339(now()));
    }
    m.deletion_grace_period_seconds = Some(grace);
    PodMark::Marked(Box::new(pod))
}

/// Marks an object as being deleted (`deletionTimestamp`), with a finalizer to wait for.
pub(super) fn mark_deleted(mut o: Object, finalizer: Option<&str>) -> Object {
    let m = o.meta_mut();
    if m.deletion_timestamp.is_none() {
        m.deletion_timestamp = Some(rfc3339(now()));
        m.deletion_grace_period_seconds = Some(0);
    }
    if let Some(f) = finalizer {
        if !m.finalizers.iter().any(|x| x == f) {
            m.finalizers.push(f.to_string());
        }
    }
    o
}

impl<S: Store> Api<S> {
    /// Deletes an object; a namespace takes everything in it along.
    /// A `Request::Delete`, as asked (`dry`: only checked).
    pub(super) async fn delete_request(
        &self,
        id: &Identity,
        req: Request,
        dry: bool,
    ) -> Result<Response, ApiError> {
        let Request::Delete {
            key,
            resource_version,
            grace_period_seconds,
            force,
            propagation,
        } = req
        else {
            return Err(err(ErrorCode::Internal, "not a delete"));
        };
        self.authorize_delete(id, &key)?;
        let stored = if dry {
            self.delete_dry(&key, resource_version)?
        } else {
            let opts = DeleteOptions {
                rv: resource_version,
                grace: grace_period_seconds,
                force,
                propagation,
                by_node: matches!(id, Identity::Node(_)),
                ..Default::default()
            };
            Box::pin(self.delete_object(&key, opts))
                .await?
                .stored()
                .clone()
        };
        Ok(Response::Object {
            object: stored.json.to_string(),
        })
    }

    /// A delete's dry run: what would refuse it (a protected namespace, a missing object, a
    /// revision precondition) refuses it; otherwise the object, as it is, and nothing
    /// written.
    pub(super) fn delete_dry(&self, key: &ObjectKey, rv: Option<u64>) -> Result<Stored, ApiError> {
        if key.kind == Kind::Namespace && SYSTEM_NAMESPACES.contains(&key.name.as_str()) {
            return Err(err(
                ErrorCode::Forbidden,
                format!(
                    "namespaces {:?} is forbidden: this namespace may not be deleted",
                    key.name
                ),
            ));
        }
        let cur = self.current(key)?;
        if rv.is_some_and(|r| r != cur.revision) {
            return Err(err(ErrorCode::Conflict, conflict_msg(key)));
        }
        Ok(cur)
    }

    pub async fn delete(&self, key: ObjectKey, rv: Option<u64>) -> Result<Stored, ApiError> {
        if key.kind == Kind::Namespace {
            if SYSTEM_NAMESPACES.contains(&key.name.as_str()) {
                return Err(err(
                    ErrorCode::Forbidden,
                    format!(
                        "namespaces {:?} is forbidden: this namespace may not be deleted",
                        key.name
                    ),
                ));
            }
            let cur = self.current(&key)?;
            if rv.is_some_and(|r| r != cur.revision) {
                return Err(err(ErrorCode::Conflict, conflict_msg(&key)));
            }
            let mut held = self.services.held.lock().await;
            *held = None;
            let gone = self
                .store
                .write(WriteOp::DeleteNamespace(key.name.clone()))
                .await
                .map_err(store_err)?;
            return gone
                .into_iter()
                .find(|s| s.key == key)
                .ok_or_else(|| err(ErrorCode::Internal, "namespace vanished"));
        }
        let mut gone = self
            .store
            .write(WriteOp::Delete {
                key: key.clone(),
                expected: rv,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => err(ErrorCode::Conflict, conflict_msg(&key)),
                e => store_err(e),
            })?;
        Ok(gone.remove(0))
    }

    /// Reads `key`, lets `decide` choose what becomes of it, and writes that with the
    /// revision read as precondition; on a conflict it reads again, unless the caller gave
    /// `rv` (then the conflict is the answer).
    pub(super) async fn rewrite(
        &self,
        key: &ObjectKey,
        rv: Option<u64>,
        mut decide: impl FnMut(&Stored, Object) -> Result<Step, ApiError>,
    ) -> Result<Deleted, ApiError> {
        for _ in 0..5 {
            let cur = self.current(key)?;
            if rv.is_some_and(|r| r != cur.revision) {
                return Err(err(ErrorCode::Conflict, conflict_msg(key)));
            }
            let obj = stored_object(&cur)?;
            let (op, gone) = match decide(&cur, obj)? {
                Step::Keep => return Ok(Deleted::Marked(cur)),
                Step::Put(mut o) => (
                    WriteOp::Update {
                        put: Put::from_object(&mut o).map_err(store_err)?,
                        expected: Some(cur.revision),
                    },
                    false,
                ),
                Step::Delete => (
                    WriteOp::Delete {
                        key: key.clone(),
                        expected: Some(cur.revision),
                    },
                    true,
                ),
            };
            match self.store.write(op).await {
                Ok(mut s) if gone => return Ok(Deleted::Gone(s.remove(0))),
                Ok(mut s) => return Ok(Deleted::Marked(s.remove(0))),
                Err(StoreError::Conflict { .. }) if rv.is_none() => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(err(ErrorCode::Conflict, conflict_msg(key)))
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(ErrorCode::Conflict, conflict_msg(key)))
    }

    /// Deletes an object as asked: `propagation` other than background marks an owner
    /// (`deletionTimestamp` and the `foregroundDeletion` or `orphan` finalizer) for the
    /// garbage collector; a pod bound to a node is marked for its node to stop it (unless
    /// `force`, or the node itself confirms); an object with finalizers is only marked.
    pub async fn delete_object(
        &self,
        key: &ObjectKey,
        opts: DeleteOptions<'_>,
    ) -> Result<Deleted, ApiError> {
        if key.kind == Kind::Namespace {
            return self.delete(key.clone(), opts.rv).await.map(Deleted::Gone);
        }
        let finalizer = match opts.propagation {
            Propagation::Foreground => Some(skiff_api::well_known::FOREGROUND),
            Propagation::Orphan => Some(skiff_api::well_known::ORPHAN),
            Propagation::Background => None,
        };
        let d = self
            .rewrite(key, opts.rv, |_, obj| {
                if opts
                    .uid
                    .is_some_and(|u| obj.meta().uid.as_deref() != Some(u))
                {
                    return Err(store_err(StoreError::NotFound(key.clone())));
                }
                let finalized = obj.meta().finalizers.is_empty();
                Ok(match (finalizer, &obj) {
                    (Some(f), _) if key.kind != Kind::Pod && !opts.by_node => {
                        Step::Put(Box::new(mark_deleted(obj, Some(f))))
                    }
                    // A pod on a node ends gracefully: this marks it, its node stops the
                    // containers and then confirms with its own delete.
                    (_, Object::Pod(pod)) if !opts.force && !opts.by_node => {
                        match mark_pod(pod, opts.grace) {
                            PodMark::Marked(p) => Step::Put(Box::new(Object::Pod(*p))),
                            PodMark::Already => Step::Keep,
                            PodMark::Unbound if finalized => Step::Delete,
                            PodMark::Unbound => Step::Put(Box::new(mark_deleted(obj, None))),
                        }
                    }
                    _ if !finalized && obj.meta().deletion_timestamp.is_some() => Step::Keep,
                    _ if !finalized => Step::Put(Box::new(mark_deleted(obj, None))),
                    _ => Step::Delete,
                })
            })
            .await?;
        if key.kind == Kind::Service && matches!(d, Deleted::Gone(_)) {
            if let Some(held) = self.services.held.lock().await.as_mut() {
                held.remove(key);
            }
        }
        if key.kind == Kind::Node && matches!(d, Deleted::Gone(_)) {
            // Its pod CIDR is free again: read the taken ones anew next time.
            *self.nodes.cidr_lock.lock().await = None;
            // Its certificates speak for nobody any more: the name is free to join again
            // (with a token), and the old node is refused from now on.
            self.revoke_credential(&key.name).await?;
        }
        Ok(d)
    }

    /// Removes a finalizer; an object being deleted goes with its last one.
    pub async fn remove_finalizer(
        &self,
        key: &ObjectKey,
        uid: &str,
        finalizer: &str,
    ) -> Result<Deleted, ApiError> {
        self.rewrite(key, None, |_, mut obj| {
            if obj.meta().uid.as_deref() != Some(uid) {
                return Err(store_err(StoreError::NotFound(key.clone())));
            }
            obj.meta_mut().finalizers.retain(|f| f != finalizer);
            let m = obj.meta();
            Ok(
                if m.deletion_timestamp.is_some()
                    && m.finalizers.is_empty()
                    && key.kind != Kind::Pod
                {
                    Step::Delete
                } else {
                    Step::Put(Box::new(obj))
                },
            )
        })
        .await
    }
}
