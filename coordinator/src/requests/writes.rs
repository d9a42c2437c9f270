//! Create, apply, update and bind: admission, then the store write.

use super::*;

/// A one-object write's result and the object written, its `resourceVersion` the
/// revision the store gave it.
pub(super) fn written(mut stored: Vec<Stored>, mut o: Object) -> (Stored, Object) {
    let s = stored.remove(0);
    o.meta_mut().resource_version = Some(s.revision.to_string());
    (s, o)
}

/// A pod bound to `node`, if it still has `uid` and is neither bound nor being deleted.
pub(super) fn bound_pod(
    key: &ObjectKey,
    mut pod: skiff_api::pod::Pod,
    uid: &str,
    node: &str,
    volumes: &std::collections::BTreeMap<String, String>,
) -> Result<skiff_api::pod::Pod, ApiError> {
    if pod.metadata.uid.as_deref() != Some(uid) {
        return Err(store_err(StoreError::NotFound(key.clone())));
    }
    if pod.spec.node_name.is_some() || pod.metadata.deletion_timestamp.is_some() {
        return Err(err(
            ErrorCode::Conflict,
            format!("pod {:?} is already bound or being deleted", key.name),
        ));
    }
    pod.spec.node_name = Some(node.to_string());
    for (volume, path) in volumes {
        pod.metadata.annotations.insert(
            format!("{}{volume}", skiff_api::storage::POD_VOLUME_PATH_PREFIX),
            path.clone(),
        );
    }
    let st = pod.status.get_or_insert_with(Default::default);
    skiff_api::conditions::set_condition(
        &mut st.conditions,
        "PodScheduled",
        "True",
        "Scheduled",
        "",
        now(),
    );
    if let Some(c) = st.conditions.iter_mut().find(|c| c.type_ == "PodScheduled") {
        c.reason = None;
        c.message = None;
        c.last_update_time = None;
    }
    Ok(pod)
}

impl<S: Store> Api<S> {
    /// Fills in what the server owns on a new object and stores it.
    pub async fn create(&self, o: Object) -> Result<Stored, ApiError> {
        self.create_object(o).await.map(|(s, _)| s)
    }

    /// [`Api::create`], also handing back the object as stored (its `resourceVersion`
    /// set), so a caller that keeps objects need not parse the stored text again.
    pub async fn create_object(&self, o: Object) -> Result<(Stored, Object), ApiError> {
        self.create_dry(o, false).await
    }

    /// [`Api::create_object`]; with `dry`, everything but the write (Kubernetes'
    /// `dryRun=All`): the object as it would be stored, nothing stored or reserved.
    pub(super) async fn create_dry(
        &self,
        mut o: Object,
        dry: bool,
    ) -> Result<(Stored, Object), ApiError> {
        // A new node gets its pod CIDR: one /24 of the cluster CIDR no other node holds.
        let mut _cidr_guard = match &mut o {
            Object::Node(n) if n.spec.pod_cidr.is_none() => {
                let mut guard = self.nodes.cidr_lock.lock().await;
                if guard.is_none() {
                    let (_, nodes) = self.store.list(Kind::Node, None).map_err(store_err)?;
                    *guard = Some(
                        nodes
                            .iter()
                            .filter_map(|s| {
                                s.value()
                                    .pointer("/spec/podCIDR")
                                    .and_then(Value::as_str)
                                    .map(String::from)
                            })
                            .collect(),
                    );
                }
                let taken = guard.as_ref().expect("filled above");
                let cidr = crate::nodes::free_node_cidr(self.nodes.cluster_cidr, taken)
                    .ok_or_else(|| {
                        err(
                            ErrorCode::Invalid,
                            "the cluster CIDR has no /24 left for another node",
                        )
                    })?;
                n.spec.pod_cidrs = vec![cidr.clone()];
                n.spec.pod_cidr = Some(cidr);
                // Forget what is known of taken CIDRs if this create fails; it is rebuilt.
                Some(guard)
            }
            _ => None,
        };
        let kind = o.kind();
        {
            let m = o.meta_mut();
            if m.resource_version.is_some() {
                return Err(err(ErrorCode::BadRequest, "metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created"));
            }
            if kind.namespaced() && m.namespace.is_none() {
                m.namespace = Some("default".into());
            }
            m.uid = Some(uid());
            m.creation_timestamp = Some(rfc3339(now()));
            m.generation = None;
            m.deletion_timestamp = None;
        }
        // Status is the system's to write, except a Node's (its agent reports it).
        o.clear_status_on_create();
        apply_defaults(&mut o);
        self.admit_priority(&mut o, None)?;
        self.admit_storage(&mut o)?;
        self.admit_ingress_class(&mut o)?;
        let mut svc_held = self.service_lock(kind).await?;
        if kind.namespaced() {
            let ns = o.meta().namespace().to_string();
            let key = ObjectKey {
                kind: Kind::Namespace,
                namespace: String::new(),
                name: ns.clone(),
            };
            if !self.store.contains(&key).map_err(store_err)? {
                return Err(err(
                    ErrorCode::NotFound,
                    format!("namespaces {ns:?} not found"),
                ));
            }
        }
        self.admit_service_account(&mut o)?;
        self.admit_limits(&mut o)?;
        let _quota_held = self.admit_quota(&o).await?;
        let generated = o.meta().name.is_none();
        for _ in 0..8 {
            if generated {
                let prefix = o.meta().generate_name.clone().unwrap_or_default();
                o.meta_mut().name = Some(format!(
                    "{prefix}{}",
                    random_string(5, b"bcdfghjklmnpqrstvwxz2456789")
                ));
            }
            set_generation(None, &mut o);
            if let Some(held) = &svc_held {
                self.assign_service(held, &o.key(), &mut o, None)?;
            }
            let op = WriteOp::Create(Put::from_object(&mut o).map_err(store_err)?);
            match self.commit(op, dry).await {
                Ok(s) if dry => return Ok(written(s, o)),
                Ok(s) => {
                    record_service(svc_held.as_deref_mut(), &o.key(), &o);
                    if kind == Kind::Namespace {
                        // A new namespace gets its `default` ServiceAccount.
                        Box::pin(self.ensure_default_account(o.meta().name())).await?;
                    }
                    if let (Some(guard), Object::Node(n)) = (_cidr_guard.as_mut(), &o) {
                        if let (Some(set), Some(c)) = (guard.as_mut(), &n.spec.pod_cidr) {
                            set.insert(c.clone());
                        }
                    }
                    return Ok(written(s, o));
                }
                Err(StoreError::AlreadyExists(_)) if generated => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(
            ErrorCode::AlreadyExists,
            "could not generate a unique name; try again",
        ))
    }

    /// Creates, or replaces the user-owned parts of, an object.
    pub async fn apply(&self, mut o: Object) -> Result<(ApplyOutcome, Stored), ApiError> {
        let kind = o.kind();
        if kind.namespaced() && o.meta().namespace.is_none() {
            o.meta_mut().namespace = Some("default".into());
        }
        let key = o.key();
        for _ in 0..5 {
            let Some(cur) = self.store.get(&key).map_err(store_err)? else {
                o.meta_mut().resource_version = None;
                match self.create(o.clone()).await {
                    Ok(s) => return Ok((ApplyOutcome::Created, s)),
                    Err(e) if e.code == ErrorCode::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            };
            let current = stored_object(&cur)?;
            let mut next = o.clone();
            carry_system_fields(&current, &mut next, true);
            priority::carry_priority(&current, &mut next);
            accounts::carry_admitted(&current, &mut next);
            storage::carry_volume_paths(&current, &mut next);
            let mut svc_held = self.service_lock(kind).await?;
            // Annotations the system wrote survive an apply.
            for (k, v) in &current.meta().annotations {
                if system_annotation(k) {
                    next.meta_mut()
                        .annotations
                        .entry(k.clone())
                        .or_insert_with(|| v.clone());
                }
            }
            apply_defaults(&mut next);
            self.admit_priority(&mut next, Some(&current))?;
            check_update(&current, &next)?;
            if let Some(held) = &svc_held {
                self.assign_service(held, &key, &mut next, Some(&current))?;
            }
            if next == current {
                return Ok((ApplyOutcome::Unchanged, cur));
            }
            set_generation(Some(&current), &mut next);
            let op = WriteOp::Update {
                put: Put::from_object(&mut next).map_err(store_err)?,
                expected: Some(cur.revision),
            };
            match self.store.write(op).await {
                Ok(mut s) => {
                    record_service(svc_held.as_deref_mut(), &key, &next);
                    return Ok((ApplyOutcome::Configured, s.remove(0)));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(ErrorCode::Conflict, conflict_msg(&key)))
    }

    /// Replaces an object (or only its status). A `resourceVersion` in it is a precondition.
    pub async fn update(&self, o: Object, status_only: bool) -> Result<Stored, ApiError> {
        self.update_object(o, status_only).await.map(|(s, _)| s)
    }

    /// [`Api::update`], also handing back the object as stored (its `resourceVersion`
    /// set).
    pub async fn update_object(
        &self,
        o: Object,
        status_only: bool,
    ) -> Result<(Stored, Object), ApiError> {
        self.update_dry(o, status_only, false, false).await
    }

    /// [`Api::update_object`]; with `dry`, everything but the write. A status write with
    /// `status_managers` also stores the managed fields it sends.
    pub(super) async fn update_dry(
        &self,
        mut o: Object,
        status_only: bool,
        dry: bool,
        status_managers: bool,
    ) -> Result<(Stored, Object), ApiError> {
        if o.kind().namespaced() && o.meta().namespace.is_none() {
            o.meta_mut().namespace = Some("default".into());
        }
        if status_only && !o.kind().info().has_status {
            // As Kubernetes answers for a kind without a status subresource.
            return Err(err(
                ErrorCode::NotFound,
                format!("{} have no status to update", resource(o.kind())),
            ));
        }
        let key = o.key();
        let given = match &o.meta().resource_version {
            None => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| err(ErrorCode::BadRequest, format!("metadata.resourceVersion: Invalid value: {rv:?}: must be a revision number")))?),
        };
        for _ in 0..5 {
            let cur = self.current(&key)?;
            if let Some(g) = given {
                if g != cur.revision {
                    return Err(err(ErrorCode::Conflict, conflict_msg(&key)));
                }
            }
            let current = stored_object(&cur)?;
            let mut next = if status_only {
                let mut n = current.clone();
                n.copy_status_from(&o);
                if status_managers {
                    n.meta_mut().managed_fields = o.meta().managed_fields.clone();
                }
                n
            } else {
                let mut n = o.clone();
                carry_system_fields(&current, &mut n, false);
                priority::carry_priority(&current, &mut n);
                accounts::carry_admitted(&current, &mut n);
                storage::carry_volume_paths(&current, &mut n);
                apply_defaults(&mut n);
                self.admit_priority(&mut n, Some(&current))?;
                check_update(&current, &n)?;
                set_generation(Some(&current), &mut n);
                n
            };
            let mut svc_held = match status_only {
                true => None,
                false => self.service_lock(key.kind).await?,
            };
            if let Some(held) = &svc_held {
                self.assign_service(held, &key, &mut next, Some(&current))?;
            }
            // An object being deleted goes when a write removes its last finalizer (as
            // in Kubernetes; a pod waits for its node).
            let m = next.meta();
            let finalized = !status_only
                && !dry
                && key.kind != Kind::Pod
                && m.deletion_timestamp.is_some()
                && m.finalizers.is_empty();
            let op = if finalized {
                WriteOp::Delete {
                    key: key.clone(),
                    expected: Some(cur.revision),
                }
            } else {
                WriteOp::Update {
                    put: Put::from_object(&mut next).map_err(store_err)?,
                    expected: Some(cur.revision),
                }
            };
            match self.commit(op, dry).await {
                Ok(s) if dry => return Ok(written(s, next)),
                Ok(s) => {
                    record_service(svc_held.as_deref_mut(), &key, &next);
                    return Ok(written(s, next));
                }
                Err(StoreError::Conflict { .. }) if given.is_none() => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(err(ErrorCode::Conflict, conflict_msg(&key)))
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(ErrorCode::Conflict, conflict_msg(&key)))
    }

    /// The store write; with `dry`, what it would store, checked as the store checks it
    /// (the key taken, the revision expected), nothing written: a create's object has
    /// the store's current revision, an update's keeps the one it replaces.
    async fn commit(&self, op: WriteOp, dry: bool) -> Result<Vec<Stored>, StoreError> {
        if !dry {
            return self.store.write(op).await;
        }
        let (put, revision) = match op {
            WriteOp::Create(put) => {
                if self.store.contains(&put.key)? {
                    return Err(StoreError::AlreadyExists(put.key));
                }
                let r = self.store.revision();
                (put, r)
            }
            WriteOp::Update { put, expected } => {
                let cur = self
                    .store
                    .get(&put.key)?
                    .ok_or_else(|| StoreError::NotFound(put.key.clone()))?;
                if let Some(given) = expected.filter(|e| *e != cur.revision) {
                    return Err(StoreError::Conflict {
                        stored: cur.revision,
                        given,
                    });
                }
                (put, cur.revision)
            }
            WriteOp::Delete { .. } | WriteOp::DeleteNamespace(_) => {
                return Err(StoreError::Invalid("a dry run writes no deletes".into()))
            }
        };
        Ok(vec![Stored {
            key: put.key.clone(),
            revision,
            json: put.render(revision).into(),
        }])
    }

    /// Binds a pod to a node (the scheduler's `pods/binding`): sets `spec.nodeName` and
    /// PodScheduled=True, only if the pod still has `uid` and is neither bound nor being
    /// deleted. `seen` is the pod as the caller last saw it and the revision that wrote
    /// it: it is bound from that without reading the store, the revision as precondition;
    /// if the pod changed since, it is read again.
    pub async fn bind(
        &self,
        key: &ObjectKey,
        uid: &str,
        node: &str,
        seen: Option<(u64, &Object)>,
    ) -> Result<Stored, ApiError> {
        let none = Default::default();
        self.bind_object(key, uid, node, &none, seen)
            .await
            .map(|(s, _)| s)
    }

    /// [`Api::bind`], also handing back the pod as stored when it was bound from `seen`.
    pub async fn bind_object(
        &self,
        key: &ObjectKey,
        uid: &str,
        node: &str,
        volumes: &std::collections::BTreeMap<String, String>,
        seen: Option<(u64, &Object)>,
    ) -> Result<(Stored, Option<Object>), ApiError> {
        if let Some((revision, Object::Pod(pod))) = seen {
            let mut next = Object::Pod(bound_pod(key, pod.clone(), uid, node, volumes)?);
            let op = WriteOp::Update {
                put: Put::from_object(&mut next).map_err(store_err)?,
                expected: Some(revision),
            };
            match self.store.write(op).await {
                Ok(s) => {
                    let (s, next) = written(s, next);
                    return Ok((s, Some(next)));
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        let d = self
            .rewrite(key, None, |_, obj| {
                let Object::Pod(pod) = obj else {
                    return Err(err(ErrorCode::BadRequest, "only pods are bound"));
                };
                Ok(Step::Put(Box::new(Object::Pod(bound_pod(
                    key, pod, uid, node, volumes,
                )?))))
            })
            .await?;
        Ok((d.stored().clone(), None))
    }
}
