//! The node's credentials: joining with a token (again only with a new one, after the
//! coordinator refused the old credential), saying why a credential expired and how the
//! node is readmitted, and renewing the certificate over the session before it expires.

use super::{jitter, Result};
use crate::state::Agent;
use skiff_transport::config::ClientConfig;
use skiff_transport::Client;
use std::time::Duration;

pub(super) fn credentials_path(agent: &Agent) -> std::path::PathBuf {
    agent.cfg.data_dir.join("node.config")
}

/// Where the id of the token the node last joined with is kept: a `--token` left on the
/// agent's command line is used again only if it is a new one (an admin's readmission),
/// never to take back a name the admin removed.
fn token_id_path(agent: &Agent) -> std::path::PathBuf {
    agent.cfg.data_dir.join("join-token-id")
}

/// The id part of a join token (`SK10<ca-hash>::<id>.<secret>`).
fn token_id(token: &str) -> Option<String> {
    let (_, cred) = skiff_transport::client::parse_token(token)?;
    cred.split_once('.').map(|(id, _)| id.to_string())
}

/// Loads the node's credentials, joining the cluster first if there are none, or again
/// if the coordinator refused them (`refused`) and `--token` is one not used before.
pub(super) async fn credentials(
    agent: &Agent,
    refused: bool,
) -> std::result::Result<ClientConfig, crate::error::Error> {
    use crate::error::Error;
    let path = credentials_path(agent);
    let used = std::fs::read_to_string(token_id_path(agent)).ok();
    let fresh_token = agent
        .cfg
        .token
        .as_deref()
        .and_then(token_id)
        .filter(|id| used.as_deref().map(str::trim) != Some(id.as_str()));
    if path.exists() && !(refused && fresh_token.is_some()) {
        let mut cfg = ClientConfig::load(&path)?;
        if let Some(s) = &agent.cfg.server {
            cfg.server = s.clone();
        }
        return Ok(cfg);
    }
    let server = agent
        .cfg
        .server
        .as_deref()
        .ok_or_else(|| Error::flag("no credentials yet: give --server and --token to join"))?;
    let token = agent
        .cfg
        .token
        .as_deref()
        .ok_or_else(|| Error::flag("no credentials yet: give --token to join"))?;
    let cfg = skiff_transport::join(server, token, &agent.cfg.name)
        .await
        .map_err(|source| Error::Join {
            server: server.to_string(),
            source,
        })?;
    cfg.save(&path).map_err(|source| Error::Save {
        path: path.display().to_string(),
        source,
    })?;
    if let Some(id) = token_id(token) {
        let p = token_id_path(agent);
        skiff_transport::files::write_private(&p, id.as_bytes()).map_err(|source| Error::Save {
            path: p.display().to_string(),
            source,
        })?;
    }
    tracing::info!(server, node = %agent.cfg.name, "joined the cluster");
    Ok(cfg)
}

/// Says, once per certificate, that the node's certificate expired and what the admin
/// runs to readmit it; the pods keep running.
pub(super) fn warn_if_expired(cfg: &ClientConfig, name: &str, warned: &mut Option<u64>) -> bool {
    let Some((_, not_after)) = cfg.certificate_validity() else {
        return false;
    };
    let expired = not_after <= crate::util::now_secs();
    if expired && *warned != Some(not_after) {
        *warned = Some(not_after);
        tracing::error!(
            node = name,
            expired = %skiff_api::util::rfc3339(not_after),
            "this node's certificate expired while it was cut off: the coordinator will refuse it; the pods keep running. To readmit it, run `skiff token create --uses 1 --ttl 1h` on an admin machine and restart skiff-agent with --token <that token>"
        );
    }
    expired
}

/// When to renew a certificate valid from `not_before` to `not_after`: at 70–90 % of its
/// lifetime (`jitter` in [0, 1) picks where), as the kubelet does, so a fleet's renewals
/// spread out.
pub fn renew_at(not_before: u64, not_after: u64, jitter: f64) -> u64 {
    let life = not_after.saturating_sub(not_before) as f64;
    not_before + (life * (0.7 + 0.2 * jitter)) as u64
}

/// Renews the node's certificate over this session before it expires and saves it; the
/// session carries on with the one it connected with (still valid until it expires), the
/// next connection uses the new one.
pub(super) async fn renew_certificate(
    agent: &Agent,
    client: &Client,
    cfg: &ClientConfig,
) -> Result<()> {
    let mut cfg = cfg.clone();
    loop {
        let Some((nb, na)) = cfg.certificate_validity() else {
            return std::future::pending().await;
        };
        let at = renew_at(nb, na, jitter());
        // Second precision: wait into the second it falls in.
        let wait_ms = (at.saturating_sub(crate::util::now_secs()) * 1000).max(200);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let new = skiff_transport::client::renew(client, &cfg, &agent.cfg.name).await?;
        let path = credentials_path(agent);
        if let Err(e) = new.save(&path) {
            // Keep the old one: it still works, and the next try may save.
            tracing::warn!(path = %path.display(), error = %e, "cannot save the renewed certificate; trying again in a minute");
            tokio::time::sleep(Duration::from_secs(60)).await;
            continue;
        }
        let until = new.certificate_validity().map_or(0, |(_, na)| na);
        tracing::info!(until = %skiff_api::util::rfc3339(until), "renewed the node certificate");
        cfg = new;
    }
}

#[cfg(test)]
mod tests {
    use super::renew_at;

    #[test]
    fn renewal_falls_in_70_to_90_percent_of_the_lifetime() {
        assert_eq!(renew_at(1000, 2000, 0.0), 1700);
        assert!((1799..=1800).contains(&renew_at(1000, 2000, 0.5)));
        assert!((1898..=1899).contains(&renew_at(1000, 2000, 0.999_999)));
        // A year's certificate renews between day 255 and day 328.
        let year = 365 * 86_400;
        let at = renew_at(0, year, 0.3);
        assert!(at > 255 * 86_400 && at < 329 * 86_400, "{at}");
        // A broken validity (notAfter before notBefore) renews at once, not never.
        assert_eq!(renew_at(2000, 1000, 0.5), 2000);
    }
}
