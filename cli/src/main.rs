//! `skiff`: the command-line client. It reads files and formats output; the coordinator
//! serves objects. The verbs' flags are in `args.rs`; each verb's work in its own module.

mod args;
mod describe;
mod get;
mod input;
mod objects;
mod print;
mod stream;
mod token;
mod workload;

use anyhow::{anyhow, bail};
use args::{Cli, Shell, Verb};
use clap::{CommandFactory, Parser};
use objects::Write;
use skiff_api::wire::{ErrorCode, Request, Response};
use skiff_api::{Kind, ObjectKey};
use skiff_transport::config::ClientConfig;
use skiff_transport::{Client, ClientError};

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli)) {
        let msg = match e.downcast_ref::<ClientError>() {
            Some(ClientError::Api(api)) => format!(
                "Error from server ({}): {}",
                code_name(api.code),
                api.message
            ),
            _ => format!("error: {e:#}"),
        };
        eprintln!("{msg}");
        std::process::exit(1);
    }
}

fn code_name(c: ErrorCode) -> &'static str {
    match c {
        ErrorCode::BadRequest => "BadRequest",
        ErrorCode::Unauthorized => "Unauthorized",
        ErrorCode::Forbidden => "Forbidden",
        ErrorCode::NotFound => "NotFound",
        ErrorCode::AlreadyExists => "AlreadyExists",
        ErrorCode::Conflict => "Conflict",
        ErrorCode::Expired => "Expired",
        ErrorCode::TooLarge => "RequestEntityTooLarge",
        ErrorCode::Invalid => "Invalid",
        ErrorCode::Timeout => "Timeout",
        ErrorCode::UnsupportedMediaType => "UnsupportedMediaType",
        ErrorCode::TooManyRequests => "TooManyRequests",
        ErrorCode::Internal => "InternalError",
    }
}

async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    let cfg = ClientConfig::discover(cli.config.as_deref())?;
    Ok(Client::connect(&cfg).await?)
}

fn kind_of(name: &str) -> anyhow::Result<Kind> {
    Kind::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.info().plural).collect();
        anyhow!(
            "the server doesn't have a resource type {name:?} (known: {})",
            known.join(", ")
        )
    })
}

/// `KIND NAME...`, `KIND/NAME...`, `KIND` or `KIND1,KIND2`.
fn targets(args: &[String]) -> anyhow::Result<Vec<(Kind, Option<String>)>> {
    if args.iter().any(|a| a.contains('/')) {
        return args
            .iter()
            .map(|a| {
                let (k, n) = a.split_once('/').ok_or_else(|| anyhow!("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'skiff get resource/<resource_name>' instead of 'skiff get resource resource/<resource_name>')"))?;
                Ok((kind_of(k)?, Some(n.to_string())))
            })
            .collect();
    }
    let (first, names) = args
        .split_first()
        .ok_or_else(|| anyhow!("you must specify the type of resource (e.g. 'skiff get pods')"))?;
    let kinds: Vec<Kind> = first
        .split(',')
        .map(kind_of)
        .collect::<anyhow::Result<_>>()?;
    if names.is_empty() {
        return Ok(kinds.into_iter().map(|k| (k, None)).collect());
    }
    if kinds.len() > 1 {
        bail!("names cannot be given with several resource types; use KIND/NAME");
    }
    Ok(names.iter().map(|n| (kinds[0], Some(n.clone()))).collect())
}

/// Exactly one `KIND NAME` or `KIND/NAME`.
fn one_target(args: &[String], ns: &str, verb: &str) -> anyhow::Result<ObjectKey> {
    let t = targets(args)?;
    match t.as_slice() {
        [(kind, Some(name))] => Ok(key(*kind, ns, name)),
        _ => bail!("{verb} needs exactly one object: KIND NAME or KIND/NAME"),
    }
}

/// `NAME` or `pod/NAME`.
fn pod_name(arg: &str) -> anyhow::Result<String> {
    match arg.split_once('/') {
        Some((k, n)) if kind_of(k)? == Kind::Pod => Ok(n.to_string()),
        Some((k, _)) => bail!("{k}: only pods have logs, exec and attach"),
        None => Ok(arg.to_string()),
    }
}

fn key(kind: Kind, ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: if kind.namespaced() {
            ns.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

/// Reads manifests and puts each in the namespace the command works in.
fn manifests_for(
    cli: &Cli,
    files: &[String],
) -> anyhow::Result<Vec<skiff_api::manifest::Manifest>> {
    let mut ms = input::read_manifests(files)?;
    for m in &mut ms {
        for w in &m.warnings {
            eprintln!("Warning: {w}");
        }
        if !m.object.kind().namespaced() {
            continue;
        }
        let meta = m.object.meta_mut();
        match (&meta.namespace, &cli.namespace) {
            (Some(a), Some(b)) if a != b => bail!(
                "the namespace from the provided object {a:?} does not match the namespace {b:?}. You must pass '--namespace={a}' to perform this operation."
            ),
            (None, ns) => meta.namespace = Some(ns.clone().unwrap_or_else(|| "default".into())),
            _ => {}
        }
    }
    Ok(ms)
}

/// `skiff completion bash|zsh|fish`: the shell's completion script on stdout.
fn completion(shell: &Shell) -> anyhow::Result<()> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "skiff", &mut std::io::stdout());
    Ok(())
}

/// `exec` and `attach`: a session with a container's process; exits with its code.
async fn session(cli: &Cli, ns: &str) -> anyhow::Result<()> {
    let c = connect(cli).await?;
    let code = match &cli.verb {
        Verb::Exec {
            pod,
            container,
            stdin,
            tty,
            command,
        } => {
            let req = skiff_api::wire::ExecRequest {
                namespace: ns.to_string(),
                pod: pod_name(pod)?,
                container: container.clone(),
                command: command.clone(),
                stdin: *stdin,
                tty: *tty,
            };
            stream::exec(&c, req).await?
        }
        Verb::Attach {
            pod,
            container,
            stdin,
            tty,
        } => {
            let req = skiff_api::wire::AttachRequest {
                namespace: ns.to_string(),
                pod: pod_name(pod)?,
                container: container.clone(),
                stdin: *stdin,
                tty: *tty,
            };
            stream::attach(&c, req).await?
        }
        _ => anyhow::bail!("only exec and attach are sessions"),
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ns = cli.namespace.clone().unwrap_or_else(|| "default".into());
    match &cli.verb {
        Verb::Completion { shell } => completion(shell),
        Verb::Version => version(&cli).await,
        Verb::Apply { files } => objects::write(&cli, files, Write::Apply).await,
        Verb::Create { files } => objects::write(&cli, files, Write::Create).await,
        Verb::Replace { files } => objects::write(&cli, files, Write::Replace).await,
        Verb::Delete(args) => objects::delete(&cli, &ns, args).await,
        Verb::Logs {
            pod,
            container,
            follow,
            tail,
            previous,
            timestamps,
            since,
            since_time,
            limit_bytes,
        } => {
            let since = log_since(since.as_deref(), since_time.as_deref(), *limit_bytes)?;
            let c = connect(&cli).await?;
            let req = skiff_api::wire::LogsRequest {
                namespace: ns.clone(),
                pod: pod_name(pod)?,
                container: container.clone(),
                follow: *follow,
                tail: tail.and_then(|t| u64::try_from(t).ok()),
                previous: *previous,
                timestamps: *timestamps,
                since,
                limit_bytes: *limit_bytes,
            };
            stream::logs(&c, req).await
        }
        Verb::Exec { .. } | Verb::Attach { .. } => session(&cli, &ns).await,
        Verb::Top {
            what,
            all_namespaces,
        } => top(&cli, what, (!*all_namespaces).then_some(ns.as_str())).await,
        Verb::Get(args) => get::get(&connect(&cli).await?, &ns, args).await,
        Verb::Describe { resources } => {
            objects::describe(&connect(&cli).await?, &ns, resources).await
        }
        Verb::Scale {
            resources,
            replicas,
        } => {
            let c = connect(&cli).await?;
            let k = one_target(resources, &ns, "scale")?;
            workload::scale(&c, &k, *replicas).await
        }
        Verb::Autoscale(a) => {
            let k = one_target(&a.resources, &ns, "autoscale")?;
            workload::autoscale(&connect(&cli).await?, &k, a).await
        }
        Verb::Rollout {
            action,
            resources,
            to_revision,
            timeout,
        } => {
            let k = one_target(resources, &ns, "rollout")?;
            let c = connect(&cli).await?;
            workload::rollout(&c, action, &k, *to_revision, *timeout).await
        }
        Verb::Set { what, args } => set(&cli, &ns, what, args).await,
        Verb::Cordon { node } | Verb::Uncordon { node } => {
            let c = connect(&cli).await?;
            workload::cordon(&c, node, matches!(cli.verb, Verb::Cordon { .. })).await
        }
        Verb::Drain {
            node,
            ignore_daemonsets,
            force,
            delete_emptydir_data,
            grace_period,
            timeout,
        } => {
            let c = connect(&cli).await?;
            workload::drain(
                &c,
                node,
                &workload::DrainOptions {
                    ignore_daemonsets: *ignore_daemonsets,
                    force: *force,
                    delete_emptydir_data: *delete_emptydir_data,
                    grace_period: *grace_period,
                    timeout: *timeout,
                },
            )
            .await
        }
        Verb::Token { action } => token::token(&connect(&cli).await?, action).await,
        Verb::Config { action } => config(&cli, action),
    }
}

/// `config kubeconfig`: this config's server and credentials for kubectl.
fn config(cli: &Cli, action: &args::ConfigAction) -> anyhow::Result<()> {
    match action {
        args::ConfigAction::Kubeconfig => {
            print!(
                "{}",
                ClientConfig::discover(cli.config.as_deref())?.kubeconfig()
            );
            Ok(())
        }
    }
}

/// `version`: this client's, then the coordinator's and its protocol's.
async fn version(cli: &Cli) -> anyhow::Result<()> {
    println!("Client Version: v{}", skiff_api::VERSION);
    let c = connect(cli).await?;
    match c.call(&Request::Version).await? {
        Response::Version { server, protocol } => {
            println!("Server Version: v{server} (protocol {protocol})")
        }
        other => bail!("unexpected answer {other:?}"),
    }
    Ok(())
}

/// `top nodes|pods`: what the nodes report; pods in `ns` (or all namespaces with `None`).
async fn top(cli: &Cli, what: &str, ns: Option<&str>) -> anyhow::Result<()> {
    let c = connect(cli).await?;
    let nodes = match c.call(&Request::Top).await? {
        Response::Usage { nodes } => nodes,
        other => bail!("unexpected answer {other:?}"),
    };
    match what {
        "nodes" | "node" | "no" => print::top_nodes(&c, &nodes).await,
        "pods" | "pod" | "po" => print::top_pods(&nodes, ns),
        other => bail!("unknown resource {other:?} for top: use nodes or pods"),
    }
}

/// `set image KIND/NAME CONTAINER=IMAGE...`.
async fn set(cli: &Cli, ns: &str, what: &str, args: &[String]) -> anyhow::Result<()> {
    if what != "image" {
        bail!("unknown set command {what:?}: use `set image`");
    }
    let split = args
        .iter()
        .position(|a| a.contains('='))
        .unwrap_or(args.len());
    let (targets_, pairs) = args.split_at(split);
    let k = one_target(targets_, ns, "set image")?;
    let c = connect(cli).await?;
    workload::set_image(&c, &k, pairs).await
}

/// `logs --since|--since-time` as seconds since the epoch (and `--limit-bytes` checked).
fn log_since(
    since: Option<&str>,
    since_time: Option<&str>,
    limit_bytes: Option<u64>,
) -> anyhow::Result<Option<u64>> {
    if limit_bytes == Some(0) {
        anyhow::bail!("--limit-bytes must be greater than 0");
    }
    Ok(match (since, since_time) {
        (Some(d), _) => {
            let d =
                skiff_api::util::parse_duration(d).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            Some(now.saturating_sub(d.as_secs()))
        }
        (None, Some(t)) => Some(
            skiff_api::util::parse_rfc3339(t)
                .ok_or_else(|| anyhow::anyhow!("--since-time: {t:?} is not an RFC 3339 time"))?,
        ),
        (None, None) => None,
    })
}
