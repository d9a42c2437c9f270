//! Reading a list as a client asked for it: label and field selectors, `limit` and
//! `continue`. Shared by a list (`verbs.rs`) and a watch's initial objects (`stream.rs`).

use super::fields::FieldSelector;
use super::route::{param, Target};
use crate::pki::Identity;
use crate::requests::Api;
use crate::store::Store;
use serde_json::Value;
use skiff_api::wire::{ApiError, ErrorCode, Request as ApiRequest, Response as ApiResponse};

/// One page of what a list asks for: label and field selectors, `limit`, from
/// `continue_token`. A field selector filters pages here: more are read until `limit`
/// objects pass.
pub(super) async fn page<S: Store>(
    api: &Api<S>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    limit: Option<u32>,
    mut continue_token: Option<String>,
) -> Result<(u64, Vec<String>, Option<String>), ApiError> {
    let fields = FieldSelector::parse(t.kind, param(q, "fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e))?;
    let selector = param(q, "labelSelector")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let mut items: Vec<String> = Vec::new();
    let mut revision = None;
    loop {
        let r = api
            .handle(
                id,
                ApiRequest::List {
                    kind: t.kind,
                    namespace: t.namespace.clone(),
                    selector: selector.clone(),
                    limit,
                    continue_token: continue_token.take(),
                },
            )
            .await;
        let ApiResponse::List {
            revision: rev,
            items: page,
            continue_token: next,
        } = r
        else {
            return Err(ApiError::new(
                ErrorCode::Internal,
                format!("unexpected answer {r:?}"),
            ));
        };
        revision.get_or_insert(rev);
        if fields.is_empty() {
            items = page;
        } else {
            for item in page {
                let v: Value = serde_json::from_str(&item)
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                if fields.matches(&v) {
                    items.push(item);
                }
            }
        }
        continue_token = next;
        let full = limit.is_some_and(|l| items.len() >= l as usize);
        if fields.is_empty() || full || continue_token.is_none() {
            return Ok((revision.unwrap_or_default(), items, continue_token));
        }
    }
}
