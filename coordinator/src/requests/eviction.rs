//! Eviction (`pods/eviction`, `Request::Evict`): a pod's deletion that honours
//! PodDisruptionBudgets, as Kubernetes' eviction subresource does. The budget covering the
//! pod is computed afresh from the store (`controllers::disruption::status`); if it allows
//! no disruption the answer is `TooManyRequests` naming the budget, and the caller (drain)
//! retries; if it does, the grant is written into the budget's `disruptedPods` with the
//! budget's revision as precondition (two evictions cannot spend one disruption), then
//! the pod is deleted as a delete would. A dry run checks the same and changes nothing.

use super::delete::DeleteOptions;
use super::*;
use crate::controllers::disruption;
use skiff_api::pod::Pod;
use skiff_api::policy::PodDisruptionBudget;
use skiff_api::workloads::{ReplicaSet, StatefulSet};

fn objects<T: skiff_api::Typed + Clone>(items: &[Stored]) -> Vec<T> {
    items
        .iter()
        .filter_map(|s| Object::from_json(T::KIND, &s.json).ok())
        .filter_map(|o| T::of(&o).cloned())
        .collect()
}

impl<S: Store> Api<S> {
    /// A `Request::Evict`; `dry`: the budget is checked as for the real eviction, nothing
    /// is spent or deleted, and the pod is answered as it is.
    pub(super) async fn evict_request(
        &self,
        id: &Identity,
        req: Request,
        dry: bool,
    ) -> Result<Response, ApiError> {
        let Request::Evict {
            key,
            grace_period_seconds,
        } = req
        else {
            return Err(err(ErrorCode::Internal, "not an eviction"));
        };
        if key.kind != Kind::Pod {
            return Err(err(ErrorCode::BadRequest, "only pods can be evicted"));
        }
        self.authorize_delete(id, &key)?;
        for _ in 0..5 {
            let cur = self.current(&key)?;
            let Ok(Object::Pod(pod)) = Object::from_json(Kind::Pod, &cur.json) else {
                return Err(err(ErrorCode::Internal, "a stored pod does not parse"));
            };
            if let Some(refusal) = self.spend_budget(&pod, dry).await? {
                let Some(message) = refusal else {
                    continue; // the budget changed under us: read again
                };
                return Err(err(ErrorCode::TooManyRequests, message));
            }
            if dry {
                return Ok(Response::Object {
                    object: self.delete_dry(&key, None)?.json.to_string(),
                });
            }
            let opts = DeleteOptions {
                uid: pod.metadata.uid.as_deref(),
                grace: grace_period_seconds,
                by_node: matches!(id, Identity::Node(_)),
                ..Default::default()
            };
            let stored = Box::pin(self.delete_object(&key, opts)).await?;
            return Ok(Response::Object {
                object: stored.stored().json.to_string(),
            });
        }
        Err(err(
            ErrorCode::TooManyRequests,
            "the pod's disruption budget kept changing; try again",
        ))
    }

    /// Checks and spends the pod's budget: `None` when the eviction may go ahead (the
    /// grant written, or no budget covers the pod), `Some(Some(why))` when the budget
    /// refuses, `Some(None)` when the budget was written by someone else meanwhile.
    async fn spend_budget(&self, pod: &Pod, dry: bool) -> Result<Option<Option<String>>, ApiError> {
        // A pod already finished or being deleted disrupts nothing.
        let finished = matches!(skiff_api::conditions::phase(pod), "Succeeded" | "Failed");
        if finished || pod.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let ns = pod.metadata.namespace().to_string();
        let list = |kind| {
            self.store
                .list(kind, Some(&ns))
                .map(|(_, items)| items)
                .map_err(store_err)
        };
        let pdbs_stored = list(Kind::PodDisruptionBudget)?;
        let pdbs: Vec<(u64, PodDisruptionBudget)> = pdbs_stored
            .iter()
            .filter_map(
                |s| match Object::from_json(Kind::PodDisruptionBudget, &s.json) {
                    Ok(Object::PodDisruptionBudget(p)) => Some((s.revision, p)),
                    _ => None,
                },
            )
            .filter(|(_, p)| disruption::covers(p, pod))
            .collect();
        let (revision, pdb) = match pdbs.as_slice() {
            [] => return Ok(None),
            [one] => one.clone(),
            _ => {
                return Err(err(
                    ErrorCode::Internal,
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ))
            }
        };
        let pods: Vec<Pod> = objects(&list(Kind::Pod)?);
        let covered: Vec<&Pod> = pods
            .iter()
            .filter(|p| disruption::covers(&pdb, p))
            .collect();
        let rss: Vec<ReplicaSet> = objects(&list(Kind::ReplicaSet)?);
        let sts: Vec<StatefulSet> = objects(&list(Kind::StatefulSet)?);
        let scales = disruption::scales(rss.iter(), sts.iter());
        let now = crate::controllers::runner::now_secs();
        let st = disruption::status(&pdb, &covered, &scales, now);
        if let Some(why) = disruption::eviction_refusal(&pdb, &st, pod) {
            return Ok(Some(Some(why)));
        }
        if dry {
            return Ok(None);
        }
        let mut granted = disruption::grant(&pdb, st, pod.metadata.name(), now);
        granted.metadata.resource_version = Some(revision.to_string());
        match self
            .update(Object::PodDisruptionBudget(granted), true)
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if e.code == ErrorCode::Conflict => Ok(Some(None)),
            Err(e) => Err(e),
        }
    }
}
