//! Storage admission, as Kubernetes' DefaultStorageClass and StorageObjectInUseProtection
//! plugins do: a new claim that names no class gets the default one; new claims and
//! volumes get their protection finalizers. The built-in `local-path` class exists from
//! the first start. The node directories the scheduler writes on a pod
//! (`skiff.io/volume.<name>`) are its alone: a client may not set or change them.

use super::*;
use skiff_api::storage::{StorageClass, POD_VOLUME_PATH_PREFIX, PVC_PROTECTION, PV_PROTECTION};

/// The newest of `items` (by creation time, then name): the default class Kubernetes picks
/// when several are marked.
pub(super) fn newest<'a, T>(
    items: impl Iterator<Item = &'a T>,
    meta: impl Fn(&T) -> &skiff_api::meta::ObjectMeta,
) -> Option<&'a T> {
    items.max_by_key(|c| {
        let m = meta(c);
        (m.creation_timestamp.clone(), m.name().to_string())
    })
}

/// The default class among `classes`: with several, the newest (as Kubernetes picks).
pub(super) fn default_class(classes: &[StorageClass]) -> Option<&StorageClass> {
    newest(classes.iter().filter(|c| c.is_default()), |c| &c.metadata)
}

fn add_finalizer(m: &mut skiff_api::meta::ObjectMeta, f: &str) {
    if !m.finalizers.iter().any(|x| x == f) {
        m.finalizers.push(f.to_string());
    }
}

fn volume_paths(o: &Object) -> impl Iterator<Item = (&String, &String)> {
    o.meta()
        .annotations
        .iter()
        .filter(|(k, _)| k.starts_with(POD_VOLUME_PATH_PREFIX))
}

/// A replaced or applied pod keeps the node directories the scheduler wrote, whatever the
/// new text says of them.
pub(super) fn carry_volume_paths(current: &Object, next: &mut Object) {
    if current.kind() != Kind::Pod {
        return;
    }
    let keep: Vec<(String, String)> = volume_paths(current)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let a = &mut next.meta_mut().annotations;
    a.retain(|k, _| !k.starts_with(POD_VOLUME_PATH_PREFIX));
    a.extend(keep);
}

impl<S: Store> Api<S> {
    /// The stored objects of `kind` that `pick` takes (typed).
    pub(super) fn stored_of<T>(
        &self,
        kind: Kind,
        pick: impl Fn(Object) -> Option<T>,
    ) -> Result<Vec<T>, ApiError> {
        let (_, all) = self.store.list(kind, None).map_err(store_err)?;
        Ok(all
            .iter()
            .filter_map(|s| stored_object(s).ok().and_then(&pick))
            .collect())
    }

    /// Admission of a new object (claims, volumes, pods).
    pub(super) fn admit_storage(&self, o: &mut Object) -> Result<(), ApiError> {
        match o {
            Object::PersistentVolumeClaim(c) => {
                if c.spec.storage_class_name.is_none() {
                    let classes = self.stored_of(Kind::StorageClass, |o| match o {
                        Object::StorageClass(sc) => Some(sc),
                        _ => None,
                    })?;
                    if let Some(d) = default_class(&classes) {
                        c.spec.storage_class_name = Some(d.metadata.name().to_string());
                    }
                }
                add_finalizer(&mut c.metadata, PVC_PROTECTION);
            }
            Object::PersistentVolume(pv) => add_finalizer(&mut pv.metadata, PV_PROTECTION),
            Object::Pod(_) => {
                if let Some((k, _)) = volume_paths(o).next() {
                    return Err(err(
                        ErrorCode::Forbidden,
                        format!(
                            "pods {:?} is forbidden: metadata.annotations[{k}]: the scheduler sets the node directories of claim volumes",
                            o.meta().name()
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Creates the built-in `local-path` class at the first start.
    pub(super) async fn bootstrap_storage_class(&self) -> Result<(), ApiError> {
        let key = ObjectKey {
            kind: Kind::StorageClass,
            namespace: String::new(),
            name: skiff_api::storage::LOCAL_PATH_CLASS.into(),
        };
        if self.store.get(&key).map_err(store_err)?.is_none() {
            self.create(Object::StorageClass(StorageClass::local_path()))
                .await?;
        }
        Ok(())
    }
}
