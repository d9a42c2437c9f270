//! `skiff`: the command-line client. It reads files and formats output; the coordinator
//! serves objects.

mod describe;
mod input;
mod print;
mod stream;
mod workload;

use anyhow::{anyhow, bail, Context};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use skiff_api::wire::{ApplyOutcome, ErrorCode, Request, Response, WatchEvent};
use skiff_api::{Kind, Object, ObjectKey};
use skiff_transport::config::ClientConfig;
use skiff_transport::{Client, ClientError};
use std::path::PathBuf;

/// skiff: a small orchestrator for edge hardware, driven like kubectl.
#[derive(Parser, Debug)]
#[command(name = "skiff", version = skiff_api::VERSION, disable_help_subcommand = true)]
struct Cli {
    /// Client config file (else $SKIFF_CONFIG, else ~/.skiff/config).
    #[arg(long, global = true, env = "SKIFF_CONFIG", hide_env_values = true)]
    config: Option<PathBuf>,
    /// The namespace to work in.
    #[arg(short = 'n', long = "namespace", global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Output {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Create or update objects from files (`-f FILE|DIR|-`).
    Apply {
        /// Files, directories or `-` for standard input.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
    },
    /// Create objects from files; fails if one exists.
    Create {
        /// Files, directories or `-` for standard input.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
    },
    /// Replace objects from files; a `resourceVersion` in the file must be current.
    Replace {
        /// Files, directories or `-` for standard input.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<String>,
    },
    /// Delete objects: `-f FILE`, `KIND NAME...`, `KIND/NAME` or `KIND --all`.
    Delete {
        /// Files naming the objects to delete.
        #[arg(short = 'f', long = "filename")]
        files: Vec<String>,
        /// Every object of the kind in the namespace.
        #[arg(long)]
        all: bool,
        /// Seconds a pod gets to end (overrides its terminationGracePeriodSeconds).
        #[arg(long, allow_negative_numbers = true)]
        grace_period: Option<i64>,
        /// Remove pods at once, without waiting for their node to confirm they stopped.
        #[arg(long)]
        force: bool,
        /// What becomes of the objects the deleted ones own: background (deleted after),
        /// foreground (deleted first), orphan (kept).
        #[arg(long, default_value = "background", value_parser = ["background", "foreground", "orphan"])]
        cascade: String,
        /// Wait until the objects are gone.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        wait: bool,
        /// `KIND NAME...` or `KIND/NAME...`.
        resources: Vec<String>,
    },
    /// Print a container's log.
    Logs {
        /// The pod (or `pod/NAME`).
        pod: String,
        /// The container (needed when the pod has several).
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        /// Keep streaming new output.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<i64>,
        /// The previous instance of the container.
        #[arg(short = 'p', long)]
        previous: bool,
        /// Prefix lines with their timestamps.
        #[arg(long)]
        timestamps: bool,
    },
    /// Run a command in a container: `skiff exec POD [-c C] [-i] [-t] -- CMD [ARGS...]`.
    Exec {
        /// The pod (or `pod/NAME`).
        pod: String,
        /// The container (default: the pod's first).
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        /// Pass standard input to the command.
        #[arg(short = 'i', long)]
        stdin: bool,
        /// Give the command a terminal.
        #[arg(short = 't', long)]
        tty: bool,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// CPU and memory the nodes report: `top nodes` or `top pods`.
    Top {
        /// `nodes` or `pods`.
        what: String,
        /// All namespaces (pods).
        #[arg(short = 'A', long = "all-namespaces")]
        all_namespaces: bool,
    },
    /// List or show objects: `get KIND [NAME...]`, `get KIND/NAME`, `get po,svc`.
    Get {
        /// What to get.
        #[arg(required = true)]
        resources: Vec<String>,
        /// All namespaces.
        #[arg(short = 'A', long = "all-namespaces")]
        all_namespaces: bool,
        /// Label selector (`app=web,tier!=db`).
        #[arg(short = 'l', long = "selector")]
        selector: Option<String>,
        /// Output format.
        #[arg(short = 'o', long = "output")]
        output: Option<Output>,
        /// After listing, watch for changes.
        #[arg(short = 'w', long = "watch")]
        watch: bool,
    },
    /// Show an object in detail with its recent events.
    Describe {
        /// `KIND NAME` or `KIND/NAME`.
        #[arg(required = true)]
        resources: Vec<String>,
    },
    /// Set the replica count: `scale KIND NAME --replicas N` or `scale KIND/NAME ...`.
    Scale {
        /// `KIND NAME` or `KIND/NAME`.
        #[arg(required = true)]
        resources: Vec<String>,
        /// The new count.
        #[arg(long, allow_negative_numbers = true)]
        replicas: i32,
    },
    /// Manage a rollout: `rollout status|history|undo|restart|pause|resume deployment NAME`.
    Rollout {
        /// status, history, undo, restart, pause or resume.
        action: String,
        /// `KIND NAME` or `KIND/NAME`.
        #[arg(required = true)]
        resources: Vec<String>,
        /// undo: the revision to go back to (default: the one before the current).
        #[arg(long, default_value_t = 0)]
        to_revision: i64,
        /// status: give up after this long (`5m`; default: wait for ever).
        #[arg(long, value_parser = skiff_api::util::parse_duration)]
        timeout: Option<std::time::Duration>,
    },
    /// Change objects: `set image deployment/NAME CONTAINER=IMAGE...`.
    Set {
        /// What to set: `image`.
        what: String,
        /// `KIND/NAME` (or `KIND NAME`) then `CONTAINER=IMAGE...`.
        #[arg(required = true)]
        args: Vec<String>,
    },
    /// Mark a node unschedulable.
    Cordon {
        /// The node.
        node: String,
    },
    /// Mark a node schedulable again.
    Uncordon {
        /// The node.
        node: String,
    },
    /// Cordon a node and evict its pods.
    Drain {
        /// The node.
        node: String,
        /// Leave DaemonSet-managed pods.
        #[arg(long)]
        ignore_daemonsets: bool,
        /// Also delete pods no controller manages.
        #[arg(long)]
        force: bool,
        /// Also delete pods with emptyDir volumes (their data is lost).
        #[arg(long)]
        delete_emptydir_data: bool,
        /// Seconds each pod gets to end (default: its own).
        #[arg(long)]
        grace_period: Option<i64>,
        /// Give up after this long (`5m`).
        #[arg(long, value_parser = skiff_api::util::parse_duration)]
        timeout: Option<std::time::Duration>,
    },
    /// Client and server versions.
    Version,
    /// Shell completion script.
    Completion {
        /// The shell.
        shell: Shell,
    },
    /// Node join tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand, Debug)]
enum TokenAction {
    /// Create a join token (printed once).
    Create {
        /// Lifetime (`30m`, `24h`, `7d`); `0` never expires.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// A note shown by `token list`.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List join tokens.
    List,
    /// Revoke a join token by its id.
    Revoke {
        /// The token id (the part before the dot).
        id: String,
    },
}

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
        Some((k, _)) => bail!("{k}: only pods have logs and exec"),
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ns = cli.namespace.clone().unwrap_or_else(|| "default".into());
    match &cli.verb {
        Verb::Completion { shell } => {
            let mut cmd = Cli::command();
            let mut out = std::io::stdout();
            match shell {
                Shell::Bash => {
                    clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "skiff", &mut out)
                }
                Shell::Zsh => {
                    clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "skiff", &mut out)
                }
                Shell::Fish => {
                    clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "skiff", &mut out)
                }
            }
            Ok(())
        }
        Verb::Version => {
            println!("Client Version: v{}", skiff_api::VERSION);
            let c = connect(&cli).await?;
            match c.call(&Request::Version).await? {
                Response::Version { server, protocol } => {
                    println!("Server Version: v{server} (protocol {protocol})")
                }
                other => bail!("unexpected answer {other:?}"),
            }
            Ok(())
        }
        Verb::Apply { files } | Verb::Create { files } | Verb::Replace { files } => {
            let ms = manifests_for(&cli, files)?;
            let c = connect(&cli).await?;
            for m in ms {
                let json = m.object.to_value().to_string();
                let name = m.object.display_name();
                match &cli.verb {
                    Verb::Apply { .. } => match c.call(&Request::Apply { object: json }).await? {
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
                    Verb::Create { .. } => {
                        c.call(&Request::Create { object: json }).await?;
                        println!("{name} created");
                    }
                    _ => {
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
        Verb::Delete {
            files,
            all,
            grace_period,
            force,
            cascade,
            wait,
            resources,
        } => {
            let propagation = match cascade.as_str() {
                "foreground" => skiff_api::wire::Propagation::Foreground,
                "orphan" => skiff_api::wire::Propagation::Orphan,
                _ => skiff_api::wire::Propagation::Background,
            };
            let mut keys = Vec::new();
            if !files.is_empty() {
                if !resources.is_empty() || *all {
                    bail!("when using -f, do not name resources or pass --all");
                }
                for m in manifests_for(&cli, files)? {
                    keys.push(m.object.key());
                }
            }
            let c = connect(&cli).await?;
            if files.is_empty() {
                let t = targets(resources)?;
                if t.is_empty() {
                    bail!("you must provide one or more resources by argument or filename (e.g. 'skiff delete pod web')");
                }
                for (kind, name) in t {
                    match name {
                        Some(n) => keys.push(key(kind, &ns, &n)),
                        None if *all => {
                            let nsq = kind.namespaced().then(|| ns.clone());
                            let (_, items) = c.list_all(kind, nsq, None).await?;
                            for i in items {
                                let v: Value = serde_json::from_str(&i)?;
                                let n = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
                                keys.push(key(kind, &ns, &n));
                            }
                        }
                        None => bail!("resource(s) were provided, but no name was specified (hint: skiff delete {} NAME, or --all)", kind.info().plural),
                    }
                }
            }
            let mut failed = None;
            if *force && grace_period.is_some_and(|g| g > 0) {
                bail!("--force deletes at once: give --grace-period=0 or none");
            }
            let mut pending = Vec::new();
            for k in keys {
                let shown = format!("{}/{}", k.kind.qualified(), k.name);
                match c
                    .call(&Request::Delete {
                        key: k.clone(),
                        resource_version: None,
                        grace_period_seconds: grace_period.map(|g| g.max(0)),
                        force: *force || *grace_period == Some(0),
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
            if *wait {
                // As kubectl: return once the objects are gone (pods end gracefully).
                for k in pending {
                    loop {
                        match c.call(&Request::Get { key: k.clone() }).await {
                            Err(e) if e.code() == Some(ErrorCode::NotFound) => break,
                            Err(e) => return Err(e.into()),
                            Ok(_) => {
                                tokio::time::sleep(std::time::Duration::from_millis(100)).await
                            }
                        }
                    }
                }
            }
            match failed {
                Some(_) => std::process::exit(1),
                None => Ok(()),
            }
        }
        Verb::Logs {
            pod,
            container,
            follow,
            tail,
            previous,
            timestamps,
        } => {
            let c = connect(&cli).await?;
            let req = skiff_api::wire::LogsRequest {
                namespace: ns.clone(),
                pod: pod_name(pod)?,
                container: container.clone(),
                follow: *follow,
                tail: tail.and_then(|t| u64::try_from(t).ok()),
                previous: *previous,
                timestamps: *timestamps,
            };
            stream::logs(&c, req).await
        }
        Verb::Exec {
            pod,
            container,
            stdin,
            tty,
            command,
        } => {
            let c = connect(&cli).await?;
            let req = skiff_api::wire::ExecRequest {
                namespace: ns.clone(),
                pod: pod_name(pod)?,
                container: container.clone(),
                command: command.clone(),
                stdin: *stdin,
                tty: *tty,
            };
            let code = stream::exec(&c, req).await?;
            std::process::exit(code);
        }
        Verb::Top {
            what,
            all_namespaces,
        } => {
            let c = connect(&cli).await?;
            let nodes = match c.call(&Request::Top).await? {
                Response::Usage { nodes } => nodes,
                other => bail!("unexpected answer {other:?}"),
            };
            match what.as_str() {
                "nodes" | "node" | "no" => print::top_nodes(&c, &nodes).await,
                "pods" | "pod" | "po" => {
                    print::top_pods(&nodes, (!*all_namespaces).then_some(ns.as_str()))
                }
                other => bail!("unknown resource {other:?} for top: use nodes or pods"),
            }
        }
        Verb::Get {
            resources,
            all_namespaces,
            selector,
            output,
            watch,
        } => {
            let c = connect(&cli).await?;
            get(
                &c,
                &ns,
                resources,
                *all_namespaces,
                selector.clone(),
                *output,
                *watch,
            )
            .await
        }
        Verb::Scale {
            resources,
            replicas,
        } => {
            let c = connect(&cli).await?;
            let k = one_target(resources, &ns, "scale")?;
            workload::scale(&c, &k, *replicas).await
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
        Verb::Set { what, args } => {
            if what != "image" {
                bail!("unknown set command {what:?}: use `set image`");
            }
            let split = args
                .iter()
                .position(|a| a.contains('='))
                .unwrap_or(args.len());
            let (targets_, pairs) = args.split_at(split);
            let k = one_target(targets_, &ns, "set image")?;
            let c = connect(&cli).await?;
            workload::set_image(&c, &k, pairs).await
        }
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
        Verb::Describe { resources } => {
            let c = connect(&cli).await?;
            let t = targets(resources)?;
            let mut first = true;
            for (kind, name) in t {
                let name = name.ok_or_else(|| {
                    anyhow!(
                        "describe needs a name: skiff describe {} NAME",
                        kind.info().plural
                    )
                })?;
                let obj = c.get_json(key(kind, &ns, &name)).await?;
                let events = events_for(&c, kind, &ns, &name).await.unwrap_or_default();
                if !first {
                    println!();
                }
                first = false;
                print!("{}", describe::describe(kind, &obj, &events)?);
            }
            Ok(())
        }
        Verb::Token { action } => {
            let c = connect(&cli).await?;
            match action {
                TokenAction::Create { ttl, description } => {
                    let ttl_seconds = parse_duration(ttl)?;
                    match c
                        .call(&Request::TokenCreate {
                            ttl_seconds,
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
                                    t.description.clone(),
                                ]
                            })
                            .collect();
                        print!(
                            "{}",
                            print::table(
                                &["ID".into(), "EXPIRES".into(), "DESCRIPTION".into()],
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
    }
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

fn structured(v: &Value, output: Output) -> String {
    match output {
        Output::Json => format!("{}\n", serde_json::to_string_pretty(v).expect("json")),
        _ => skiff_api::yaml::to_yaml(v),
    }
}

async fn get(
    c: &Client,
    ns: &str,
    resources: &[String],
    all_ns: bool,
    selector: Option<String>,
    output: Option<Output>,
    watch: bool,
) -> anyhow::Result<()> {
    let t = targets(resources)?;
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
            let (revision, items) = c.list_all(kind, namespace, selector.clone()).await?;
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
    } else if !printed_any && !watch {
        if all_ns || !t.iter().any(|x| x.0.namespaced()) {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {ns} namespace.");
        }
    }
    if watch {
        let (kind, mut since) = match (watch_from, t.first()) {
            (Some(w), _) => w,
            (None, Some((k, _))) => (*k, 0),
            (None, None) => return Ok(()),
        };
        let names: Vec<String> = t.iter().filter_map(|x| x.1.clone()).collect();
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
                            Some(f @ (Output::Json | Output::Yaml)) => {
                                print!("{}", structured(&v, f))
                            }
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
    Ok(())
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
