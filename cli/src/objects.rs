//! The verbs that change or show single objects: `apply`, `create` and `replace` from
//! files, `delete` (with its cascade and its wait), `describe` with the object's events.

use crate::args::DeleteArgs;
use crate::{code_name, describe, key, manifests_for, targets, Cli};
use anyhow::{anyhow, bail};
use serde_json::Value;
use skiff_api::wire::{ApplyOutcome, ErrorCode, Propagation, Request, Response};
use skiff_api::{Kind, ObjectKey};
use skiff_transport::Client;

/// How `write` sends each manifest.
#[derive(Clone, Copy)]
pub(crate) enum Write {
    Apply,
    Create,
    Replace,
}

/// `apply`, `create` or `replace -f`: each manifest in turn, stopping at the first refusal.
pub(crate) async fn write(cli: &Cli, files: &[String], how: Write) -> anyhow::Result<()> {
    let ms = manifests_for(cli, files)?;
    let c = crate::connect(cli).await?;
    for m in ms {
        let json = m.object.to_value().to_string();
        let name = m.object.display_name();
        match how {
            Write::Apply => match c.call(&Request::Apply { object: json }).await? {
                Response::Applied { outcome, .. } => {
                    let word = match outcome {
                        ApplyOutcome::Created => "created",
                        ApplyOutcome::Configured => "configured",
                        ApplyOutcome::Unchanged => "unchanged",
                    };
                    println!("{name} {word}");
                }
                other => bail!("unexpected answer {other:?}"),
            },
            Write::Create => {
                c.call(&Request::Create { object: json }).await?;
                println!("{name} created");
            }
            Write::Replace => {
                c.call(&Request::Update {
                    object: json,
                    status: false,
                })
                .await?;
                println!("{name} replaced");
            }
        }
    }
    Ok(())
}

/// `delete`: every object named, each refusal printed as kubectl does (the command then
/// fails), then, with `--wait`, until the deleted ones are gone.
pub(crate) async fn delete(cli: &Cli, ns: &str, args: &DeleteArgs) -> anyhow::Result<()> {
    let propagation = match args.cascade.as_str() {
        "foreground" => Propagation::Foreground,
        "orphan" => Propagation::Orphan,
        _ => Propagation::Background,
    };
    if !args.files.is_empty() && (!args.resources.is_empty() || args.all) {
        bail!("when using -f, do not name resources or pass --all");
    }
    // Files are read (and refused) before connecting; names need the server for --all.
    let from_files: Option<Vec<ObjectKey>> = (!args.files.is_empty())
        .then(|| manifests_for(cli, &args.files))
        .transpose()?
        .map(|ms| ms.iter().map(|m| m.object.key()).collect());
    let c = crate::connect(cli).await?;
    let keys = match from_files {
        Some(keys) => keys,
        None => delete_targets(&c, ns, args).await?,
    };
    if args.force && args.grace_period.is_some_and(|g| g > 0) {
        bail!("--force deletes at once: give --grace-period=0 or none");
    }
    let mut failed = None;
    let mut pending = Vec::new();
    for k in keys {
        let shown = format!("{}/{}", k.kind.qualified(), k.name);
        match c
            .call(&Request::Delete {
                key: k.clone(),
                resource_version: None,
                grace_period_seconds: args.grace_period.map(|g| g.max(0)),
                force: args.force || args.grace_period == Some(0),
                propagation,
            })
            .await
        {
            Ok(_) => {
                println!("{shown} deleted");
                pending.push(k);
            }
            Err(e) => {
                eprintln!(
                    "Error from server ({}): {e}",
                    e.code().map(code_name).unwrap_or("Error")
                );
                failed = Some(e);
            }
        }
    }
    if args.wait {
        // As kubectl: return once the objects are gone (pods end gracefully).
        for k in pending {
            loop {
                match c.call(&Request::Get { key: k.clone() }).await {
                    Err(e) if e.code() == Some(ErrorCode::NotFound) => break,
                    Err(e) => return Err(e.into()),
                    Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
        }
    }
    match failed {
        Some(_) => std::process::exit(1),
        None => Ok(()),
    }
}

/// The objects `delete KIND NAME...`, `delete KIND/NAME...` or `delete KIND --all` names.
async fn delete_targets(c: &Client, ns: &str, args: &DeleteArgs) -> anyhow::Result<Vec<ObjectKey>> {
    let t = targets(&args.resources)?;
    if t.is_empty() {
        bail!("you must provide one or more resources by argument or filename (e.g. 'skiff delete pod web')");
    }
    let mut keys = Vec::new();
    for (kind, name) in t {
        match name {
            Some(n) => keys.push(key(kind, ns, &n)),
            None if args.all => {
                let nsq = kind.namespaced().then(|| ns.to_string());
                let (_, items) = c.list_all(kind, nsq, None).await?;
                for i in items {
                    let v: Value = serde_json::from_str(&i)?;
                    let n = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                    keys.push(key(kind, ns, &n));
                }
            }
            None => bail!("resource(s) were provided, but no name was specified (hint: skiff delete {} NAME, or --all)", kind.info().plural),
        }
    }
    Ok(keys)
}

/// `describe KIND NAME...`: each object's sections and its recent events.
pub(crate) async fn describe(c: &Client, ns: &str, resources: &[String]) -> anyhow::Result<()> {
    let mut first = true;
    for (kind, name) in targets(resources)? {
        let name = name.ok_or_else(|| {
            anyhow!(
                "describe needs a name: skiff describe {} NAME",
                kind.info().plural
            )
        })?;
        let obj = c.get_json(key(kind, ns, &name)).await?;
        let events = events_for(c, kind, ns, &name).await.unwrap_or_default();
        if !first {
            println!();
        }
        first = false;
        print!("{}", describe::describe(kind, &obj, &events)?);
    }
    Ok(())
}

async fn events_for(c: &Client, kind: Kind, ns: &str, name: &str) -> anyhow::Result<Vec<Value>> {
    let namespace = kind
        .namespaced()
        .then(|| ns.to_string())
        .or(Some("default".into()));
    let (_, items) = c.list_all(Kind::Event, namespace, None).await?;
    let mut out: Vec<Value> = items
        .iter()
        .filter_map(|i| serde_json::from_str::<Value>(i).ok())
        .filter(|e| {
            e.pointer("/involvedObject/kind").and_then(Value::as_str) == Some(kind.name())
                && e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(name)
        })
        .collect();
    out.sort_by(|a, b| {
        let t = |e: &Value| {
            e.pointer("/lastTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        t(a).cmp(&t(b))
    });
    Ok(out)
}
