//! `skiff get`: tables, names or documents for the objects asked for, then (with `-w`)
//! their changes as they come.

use crate::args::{GetArgs, Output};
use crate::{key, print, targets};
use anyhow::{bail, Context};
use serde_json::Value;
use skiff_api::wire::{Request, Response, WatchEvent};
use skiff_api::{Kind, Object};
use skiff_transport::{Client, ClientError};

pub(crate) async fn get(c: &Client, ns: &str, args: &GetArgs) -> anyhow::Result<()> {
    let (all_ns, output) = (args.all_namespaces, args.output);
    let t = targets(&args.resources)?;
    let is_structured = matches!(output, Some(Output::Json) | Some(Output::Yaml));
    let mut collected: Vec<Value> = Vec::new();
    let single_named = t.len() == 1 && t[0].1.is_some();
    let several_kinds = t
        .iter()
        .map(|x| x.0)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let mut printed_any = false;
    let mut watch_from: Option<(Kind, u64)> = None;
    for (kind, group) in group_by_kind(&t) {
        let mut objs = Vec::new();
        if group.iter().all(Option::is_none) {
            let namespace = (kind.namespaced() && !all_ns).then(|| ns.to_string());
            let (revision, items) = c.list_all(kind, namespace, args.selector.clone()).await?;
            watch_from = Some((kind, revision));
            for i in items {
                objs.push(serde_json::from_str::<Value>(&i).context("decoding an object")?);
            }
        } else {
            for name in group.into_iter().flatten() {
                objs.push(c.get_json(key(kind, ns, &name)).await?);
            }
        }
        if is_structured {
            collected.extend(objs);
            continue;
        }
        if objs.is_empty() {
            continue;
        }
        if printed_any {
            println!();
        }
        printed_any = true;
        let text = print_objects(kind, &objs, output, all_ns, true, several_kinds);
        print!("{text}");
    }
    if let Some(fmt) = output.filter(|_| is_structured) {
        if single_named && collected.len() == 1 {
            print!("{}", structured(&collected[0], fmt));
        } else {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": collected, "metadata": {"resourceVersion": ""}});
            print!("{}", structured(&list, fmt));
        }
    } else if !printed_any && !args.watch {
        if all_ns || !t.iter().any(|x| x.0.namespaced()) {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {ns} namespace.");
        }
    }
    if !args.watch {
        return Ok(());
    }
    let (kind, since) = match (watch_from, t.first()) {
        (Some(w), _) => w,
        (None, Some((k, _))) => (*k, 0),
        (None, None) => return Ok(()),
    };
    let names: Vec<String> = t.iter().filter_map(|x| x.1.clone()).collect();
    watch(c, ns, args, kind, since, &names, printed_any).await
}

/// `get -w` after the list: prints each change to `kind` (to the `names`, if any) from
/// revision `since`, listing again when history has moved past it.
async fn watch(
    c: &Client,
    ns: &str,
    args: &GetArgs,
    kind: Kind,
    mut since: u64,
    names: &[String],
    mut printed_any: bool,
) -> anyhow::Result<()> {
    let (all_ns, output, selector) = (args.all_namespaces, args.output, &args.selector);
    loop {
        let namespace = (kind.namespaced() && !all_ns).then(|| ns.to_string());
        let req = Request::Watch {
            kind,
            namespace: namespace.clone(),
            selector: selector.clone(),
            since: (since > 0).then_some(since),
        };
        let mut w = c.watch(&req).await?;
        loop {
            match w.next().await? {
                None => return Ok(()),
                Some(
                    WatchEvent::Added { object, .. }
                    | WatchEvent::Modified { object, .. }
                    | WatchEvent::Deleted { object, .. },
                ) => {
                    let v: Value = serde_json::from_str(&object)?;
                    let name = v
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !names.is_empty() && !names.iter().any(|n| n == name) {
                        continue;
                    }
                    match output {
                        Some(f @ (Output::Json | Output::Yaml)) => print!("{}", structured(&v, f)),
                        _ => print!(
                            "{}",
                            print_objects(kind, &[v], output, all_ns, !printed_any, false)
                        ),
                    }
                    printed_any = true;
                }
                Some(WatchEvent::Expired { .. }) => {
                    // History moved on: list again, then watch from the list.
                    let mut first = Request::list(kind, namespace, selector.clone());
                    if let Request::List { limit, .. } = &mut first {
                        *limit = Some(1);
                    }
                    let Response::List { revision, .. } = c.call(&first).await? else {
                        bail!("unexpected answer to list");
                    };
                    since = revision;
                    break;
                }
                Some(WatchEvent::Error(e)) => return Err(ClientError::Api(e).into()),
            }
        }
    }
}

/// Table, names or documents for objects of one kind. `kind_prefix` puts `kind/` before
/// each name, as kubectl does when several kinds are listed together.
fn print_objects(
    kind: Kind,
    objs: &[Value],
    output: Option<Output>,
    all_ns: bool,
    header: bool,
    kind_prefix: bool,
) -> String {
    match output {
        Some(Output::Name) => objs.iter().map(|o| format!("{}\n", obj_name(o))).collect(),
        Some(f @ (Output::Json | Output::Yaml)) => objs.iter().map(|o| structured(o, f)).collect(),
        _ => {
            let wide = output == Some(Output::Wide);
            let ns_col = all_ns && kind.namespaced();
            let mut h: Vec<String> = kind.columns(wide).into_iter().map(String::from).collect();
            if ns_col {
                h.insert(0, "NAMESPACE".into());
            }
            let rows: Vec<Vec<String>> = objs
                .iter()
                .map(|o| {
                    let mut r = print::row(kind, o, wide);
                    if kind_prefix && kind != Kind::Event {
                        r[0] = format!("{}/{}", kind.qualified(), r[0]);
                    }
                    if ns_col {
                        r.insert(
                            0,
                            o.pointer("/metadata/namespace")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        );
                    }
                    r
                })
                .collect();
            let t = print::table(&h, &rows);
            if header {
                t
            } else {
                t.lines().skip(1).map(|l| format!("{l}\n")).collect()
            }
        }
    }
}

/// An object or list as `-o yaml|json` prints it: without `metadata.managedFields`, as
/// kubectl hides them.
fn structured(v: &Value, output: Output) -> String {
    let mut v = v.clone();
    let objects: Vec<&mut Value> = match v.get_mut("items") {
        Some(Value::Array(items)) => items.iter_mut().collect(),
        _ => vec![&mut v],
    };
    for o in objects {
        if let Some(Value::Object(m)) = o.get_mut("metadata") {
            m.remove("managedFields");
        }
    }
    let v = &v;
    match output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(v).expect("json")),
        _ => skiff_api::yaml::to_yaml(v),
    }
}

fn group_by_kind(t: &[(Kind, Option<String>)]) -> Vec<(Kind, Vec<Option<String>>)> {
    let mut out: Vec<(Kind, Vec<Option<String>>)> = Vec::new();
    for (k, n) in t {
        match out.iter_mut().find(|(kk, _)| kk == k) {
            Some((_, v)) => v.push(n.clone()),
            None => out.push((*k, vec![n.clone()])),
        }
    }
    out
}
fn obj_name(o: &Value) -> String {
    match Object::from_value(o) {
        Ok(obj) => obj.display_name(),
        Err(_) => o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
    }
}
