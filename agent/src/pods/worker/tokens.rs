//! ServiceAccount tokens for the pod's projected `serviceAccountToken` sources, as the
//! kubelet's token manager keeps them: asked of the coordinator (bound to the pod: it
//! stops being accepted once the pod is gone), kept in memory, asked again at 80 % of
//! their life or after a day. While the coordinator cannot be reached, a token still
//! valid is kept; the volume's file is rewritten when a new one comes.

use super::*;

/// A token the worker holds.
pub(super) struct Held {
    token: String,
    expires: u64,
    refresh_at: u64,
}

/// The (audience, expirationSeconds) pairs the pod's projected volumes ask tokens for.
fn wanted(pod: &Pod) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = pod
        .spec
        .volumes
        .iter()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| &p.sources)
        .filter_map(|s| s.service_account_token.as_ref())
        .map(|t| {
            (
                t.audience.clone().unwrap_or_default(),
                t.expiration_seconds.unwrap_or(3600),
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Worker {
    /// The pod's sources with its tokens, asking for the ones missing or due; and when a
    /// token is next due (or, when one could not be had, when to try again).
    pub(super) async fn with_tokens(
        &mut self,
        pod: &Arc<Pod>,
        sources: &Arc<Sources>,
    ) -> (Arc<Sources>, Option<Instant>) {
        let wanted = wanted(pod);
        if wanted.is_empty() {
            return (sources.clone(), None);
        }
        let now = crate::util::now_secs();
        let mut next: Option<u64> = None;
        for (audience, expiration) in wanted {
            let key = podspec::token_key(&audience, expiration);
            let due = self.tokens.get(&key).is_none_or(|h| now >= h.refresh_at);
            if due {
                match self.request_token(pod, &audience, expiration).await {
                    Ok((token, expires)) => {
                        // 80 % of its life, or a day, whichever comes first.
                        let life = expires.saturating_sub(now);
                        let refresh_at = now + (life * 4 / 5).min(86_400);
                        let held = Held {
                            token,
                            expires,
                            refresh_at,
                        };
                        self.tokens.insert(key.clone(), held);
                    }
                    Err(e) => {
                        self.agent.event(
                            pod,
                            "Warning",
                            "FailedMount",
                            format!(
                                "requesting a ServiceAccount token (audience {audience:?}): {e}"
                            ),
                        );
                        // A token that expired is no use; a valid one is kept.
                        if self.tokens.get(&key).is_some_and(|h| now >= h.expires) {
                            self.tokens.remove(&key);
                        }
                        let retry = now + self.agent.cfg.backoff_base.as_secs().max(1);
                        next = Some(next.map_or(retry, |n| n.min(retry)));
                        continue;
                    }
                }
            }
            if let Some(h) = self.tokens.get(&key) {
                next = Some(next.map_or(h.refresh_at, |n| n.min(h.refresh_at)));
            }
        }
        let mut s = (**sources).clone();
        s.tokens = self
            .tokens
            .iter()
            .map(|(k, h)| (k.clone(), h.token.clone()))
            .collect();
        let at = next.map(|t| Instant::now() + Duration::from_secs(t.saturating_sub(now)));
        (Arc::new(s), at)
    }

    async fn request_token(
        &self,
        pod: &Pod,
        audience: &str,
        expiration: i64,
    ) -> Result<(String, u64), String> {
        let client = self
            .agent
            .client()
            .ok_or("the coordinator cannot be reached")?;
        let req = Request::ServiceAccountToken {
            namespace: pod.metadata.namespace().to_string(),
            name: pod
                .spec
                .service_account_name
                .clone()
                .unwrap_or_else(|| "default".into()),
            audiences: if audience.is_empty() {
                Vec::new()
            } else {
                vec![audience.to_string()]
            },
            expiration_seconds: expiration,
            pod: Some((
                pod.metadata.name().to_string(),
                pod.metadata.uid.clone().unwrap_or_default(),
            )),
        };
        match client.call(&req).await.map_err(|e| e.to_string())? {
            skiff_api::wire::Response::AccountToken { token, expires } => Ok((token, expires)),
            other => Err(format!("an unexpected answer: {other:?}")),
        }
    }
}
