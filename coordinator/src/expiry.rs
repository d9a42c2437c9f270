//! What the store forgets on its own: Events an `--event-ttl` after they last happened
//! (Kubernetes keeps them an hour), so a crash-looping pod's Events cannot fill the store,
//! and join tokens past their expiry (Kubernetes' token cleaner). Which ones go is a pure
//! decision; the sweep deletes each at the revision it was judged at, so an Event that
//! happened again meanwhile stays.

use crate::requests::Api;
use crate::store::{Store, StoreError, Stored, WriteOp};
use skiff_api::util::parse_rfc3339;
use skiff_api::{Kind, ObjectKey};
use std::time::Duration;

/// When an Event last happened: `lastTimestamp`, else `eventTime`, else
/// `firstTimestamp`, else its creation.
fn last_seen(v: &serde_json::Value) -> Option<u64> {
    [
        "/lastTimestamp",
        "/eventTime",
        "/firstTimestamp",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| {
        v.pointer(p)
            .and_then(|t| t.as_str())
            .and_then(parse_rfc3339)
    })
}

/// The Events of `events` older than `ttl` at `now` (unix seconds), with the revision
/// each was judged at.
pub fn expired_events(events: &[Stored], now: u64, ttl: Duration) -> Vec<(ObjectKey, u64)> {
    events
        .iter()
        .filter(|s| last_seen(&s.value()).is_some_and(|t| t.saturating_add(ttl.as_secs()) <= now))
        .map(|s| (s.key.clone(), s.revision))
        .collect()
}

/// The bootstrap token Secrets past their `expiration` at `now`.
pub fn expired_tokens(secrets: &[Stored], now: u64) -> Vec<(ObjectKey, u64)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    secrets
        .iter()
        .filter(|s| {
            let v = s.value();
            v.pointer("/type").and_then(|t| t.as_str()) == Some("bootstrap.kubernetes.io/token")
                && v.pointer("/data/expiration")
                    .and_then(|e| e.as_str())
                    .and_then(|e| b64.decode(e).ok())
                    .and_then(|e| parse_rfc3339(&String::from_utf8_lossy(&e)))
                    .is_some_and(|t| t <= now)
        })
        .map(|s| (s.key.clone(), s.revision))
        .collect()
}

/// How often the sweep runs for a TTL: a quarter of it, between a second and a minute.
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Deletes expired Events and tokens every [`sweep_interval`], for good.
pub async fn run<S: Store>(api: std::sync::Arc<Api<S>>, event_ttl: Duration) {
    let mut tick = tokio::time::interval(sweep_interval(event_ttl));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut gone = match api.store.list(Kind::Event, None) {
            Ok((_, events)) => expired_events(&events, now(), event_ttl),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list Events to expire");
                continue;
            }
        };
        if let Ok((_, secrets)) = api.store.list(Kind::Secret, Some("kube-system")) {
            gone.extend(expired_tokens(&secrets, now()));
        }
        let mut deleted = 0usize;
        for (key, rev) in gone {
            match api
                .store
                .write(WriteOp::Delete {
                    key,
                    expected: Some(rev),
                })
                .await
            {
                Ok(_) => deleted += 1,
                // Updated (it happened again) or gone meanwhile: judged again next time.
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => {}
                Err(e) => tracing::warn!(error = %e, "cannot delete an expired object"),
            }
        }
        if deleted > 0 {
            tracing::debug!(deleted, "expired Events and tokens deleted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::util::rfc3339;

    fn stored(kind: Kind, name: &str, revision: u64, v: serde_json::Value) -> Stored {
        Stored {
            key: ObjectKey {
                kind,
                namespace: "default".into(),
                name: name.into(),
            },
            revision,
            json: v.to_string().into(),
        }
    }

    #[test]
    fn events_expire_a_ttl_after_they_last_happened() {
        let hour = Duration::from_secs(3600);
        let now = 10_000_000;
        let ev = |name: &str, last: Option<u64>, created: u64| {
            let mut v = serde_json::json!({"metadata": {"name": name, "creationTimestamp": rfc3339(created)}});
            if let Some(l) = last {
                v["lastTimestamp"] = rfc3339(l).into();
            }
            stored(Kind::Event, name, 7, v)
        };
        let events = [
            ev("old", Some(now - 3601), now - 9000),
            ev("exactly", Some(now - 3600), now - 9000),
            // Created long ago, but happened again a minute ago (a crash loop's count).
            ev("again", Some(now - 60), now - 90_000),
            ev("no-last", None, now - 4000),
            ev("young-no-last", None, now - 10),
        ];
        let gone: Vec<String> = expired_events(&events, now, hour)
            .into_iter()
            .map(|(k, rev)| {
                assert_eq!(rev, 7, "deleted at the revision judged");
                k.name
            })
            .collect();
        assert_eq!(gone, ["old", "exactly", "no-last"]);
    }

    #[test]
    fn only_expired_bootstrap_tokens_are_swept() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let tok = |name: &str, ty: &str, exp: Option<u64>| {
            let mut v = serde_json::json!({"type": ty, "metadata": {"name": name}, "data": {}});
            if let Some(e) = exp {
                v["data"]["expiration"] = b64(&rfc3339(e)).into();
            }
            stored(Kind::Secret, name, 3, v)
        };
        let secrets = [
            tok(
                "bootstrap-token-a",
                "bootstrap.kubernetes.io/token",
                Some(100),
            ),
            tok(
                "bootstrap-token-b",
                "bootstrap.kubernetes.io/token",
                Some(300),
            ),
            tok("bootstrap-token-c", "bootstrap.kubernetes.io/token", None),
            tok("user-secret", "Opaque", Some(100)),
        ];
        let gone: Vec<String> = expired_tokens(&secrets, 200)
            .into_iter()
            .map(|(k, _)| k.name)
            .collect();
        assert_eq!(gone, ["bootstrap-token-a"]);
    }

    #[test]
    fn the_sweep_runs_often_enough_for_short_ttls_and_rarely_for_long_ones() {
        assert_eq!(
            sweep_interval(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(8)),
            Duration::from_secs(2)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
