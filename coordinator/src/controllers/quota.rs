//! The ResourceQuota controller: each quota's `status` (`hard` as its spec, `used` for
//! each of those resources) from its namespace's objects as stored (the kinds a quota
//! counts are not all in the controllers' cache), written when it changed.

use super::{Action, Cache};
use crate::requests::Api;
use crate::store::Store;
use skiff_api::quota::{status_from, ResourceQuota};
use skiff_api::Object;

/// The status writes the quotas need.
pub fn statuses<S: Store>(api: &Api<S>, cache: &Cache) -> Vec<Action> {
    let mut out = Vec::new();
    for q in cache.typed::<ResourceQuota>() {
        let Ok(objects) = api.quota_objects(q, q.metadata.namespace()) else {
            continue;
        };
        let status = status_from(q, objects.iter());
        if q.status.as_ref() != Some(&status) {
            let mut next = q.clone();
            next.status = Some(status);
            out.push(Action::Status(Object::ResourceQuota(next)));
        }
    }
    out
}
