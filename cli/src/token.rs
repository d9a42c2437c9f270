//! `skiff token`: join tokens are created (printed once), listed and revoked.

use crate::args::TokenAction;
use crate::print;
use anyhow::{anyhow, bail};
use skiff_api::wire::{Request, Response};
use skiff_transport::Client;

pub(crate) async fn token(c: &Client, action: &TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Create {
            ttl,
            uses,
            description,
        } => {
            let ttl_seconds = parse_duration(ttl)?;
            match c
                .call(&Request::TokenCreate {
                    ttl_seconds,
                    uses: *uses,
                    description: description.clone(),
                })
                .await?
            {
                Response::Token { token, .. } => println!("{token}"),
                other => bail!("unexpected answer {other:?}"),
            }
        }
        TokenAction::List => {
            if let Response::Tokens { tokens } = c.call(&Request::TokenList).await? {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.expires
                                .map(skiff_api::util::rfc3339)
                                .unwrap_or_else(|| "<never>".into()),
                            t.uses_left
                                .map(|n| n.to_string())
                                .unwrap_or_else(|| "<unlimited>".into()),
                            t.description.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    print::table(
                        &[
                            "ID".into(),
                            "EXPIRES".into(),
                            "USES LEFT".into(),
                            "DESCRIPTION".into()
                        ],
                        &rows
                    )
                );
            }
        }
        TokenAction::Revoke { id } => {
            c.call(&Request::TokenRevoke { id: id.clone() }).await?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}

fn parse_duration(s: &str) -> anyhow::Result<Option<u64>> {
    if s == "0" {
        return Ok(None);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("invalid duration {s:?} (use 30s, 10m, 24h, 7d or 0)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("invalid duration {s:?} (use 30s, 10m, 24h, 7d or 0)"),
    };
    Ok(Some(n * mult))
}
