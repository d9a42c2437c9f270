//! The command line: the verbs, their flags and their help, as clap reads them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// skiff: a small orchestrator for edge hardware, driven like kubectl.
#[derive(Parser, Debug)]
#[command(name = "skiff", version = skiff_api::VERSION, disable_help_subcommand = true)]
pub(crate) struct Cli {
    /// Client config file (else $SKIFF_CONFIG, else ~/.skiff/config).
    #[arg(long, global = true, env = "SKIFF_CONFIG", hide_env_values = true)]
    pub(crate) config: Option<PathBuf>,
    /// The namespace to work in.
    #[arg(short = 'n', long = "namespace", global = true)]
    pub(crate) namespace: Option<String>,
    #[command(subcommand)]
    pub(crate) verb: Verb,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(crate) enum Output {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Verb {
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
    Delete(DeleteArgs),
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
        /// Only lines newer than this (5s, 2m, 3h).
        #[arg(long, conflicts_with = "since_time")]
        since: Option<String>,
        /// Only lines written at or after this RFC 3339 time.
        #[arg(long)]
        since_time: Option<String>,
        /// At most this many bytes of log.
        #[arg(long)]
        limit_bytes: Option<u64>,
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
    /// Attach to a container's own process: `skiff attach POD [-c C] [-i] [-t]`. Its output
    /// from now on; with `-i`, your input to its standard input (it needs `stdin: true`).
    Attach {
        /// The pod (or `pod/NAME`).
        pod: String,
        /// The container (default: the pod's first).
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        /// Pass standard input to the container.
        #[arg(short = 'i', long)]
        stdin: bool,
        /// Use a terminal (the container needs `tty: true`).
        #[arg(short = 't', long)]
        tty: bool,
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
    Get(GetArgs),
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
    /// Create a HorizontalPodAutoscaler for a Deployment, ReplicaSet or StatefulSet:
    /// `autoscale KIND NAME --max N [--min N] [--cpu-percent P]`.
    Autoscale(AutoscaleArgs),
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
    /// The client config.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigAction {
    /// Print a kubeconfig with this config's server and credentials, for kubectl and
    /// Kubernetes' clients (the Kubernetes API over HTTPS on the same address).
    Kubeconfig,
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokenAction {
    /// Create a join token (printed once).
    Create {
        /// Lifetime (`30m`, `24h`, `7d`); `0` never expires.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// How many nodes may join with it (`1` for one board); any number if not given.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
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

// `skiff delete`'s flags and targets (the variant's doc comment is its help).
#[derive(Args, Debug)]
pub(crate) struct DeleteArgs {
    /// Files naming the objects to delete.
    #[arg(short = 'f', long = "filename")]
    pub(crate) files: Vec<String>,
    /// Every object of the kind in the namespace.
    #[arg(long)]
    pub(crate) all: bool,
    /// Seconds a pod gets to end (overrides its terminationGracePeriodSeconds).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) grace_period: Option<i64>,
    /// Remove pods at once, without waiting for their node to confirm they stopped.
    #[arg(long)]
    pub(crate) force: bool,
    /// What becomes of the objects the deleted ones own: background (deleted after),
    /// foreground (deleted first), orphan (kept).
    #[arg(long, default_value = "background", value_parser = ["background", "foreground", "orphan"])]
    pub(crate) cascade: String,
    /// Wait until the objects are gone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) wait: bool,
    /// `KIND NAME...` or `KIND/NAME...`.
    pub(crate) resources: Vec<String>,
}

// `skiff get`'s flags and targets (the variant's doc comment is its help).
#[derive(Args, Debug)]
pub(crate) struct GetArgs {
    /// What to get.
    #[arg(required = true)]
    pub(crate) resources: Vec<String>,
    /// All namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub(crate) all_namespaces: bool,
    /// Label selector (`app=web,tier!=db`).
    #[arg(short = 'l', long = "selector")]
    pub(crate) selector: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<Output>,
    /// After listing, watch for changes.
    #[arg(short = 'w', long = "watch")]
    pub(crate) watch: bool,
}

/// `skiff autoscale`'s arguments.
#[derive(clap::Args, Debug)]
pub struct AutoscaleArgs {
    /// `KIND NAME` or `KIND/NAME`.
    #[arg(required = true)]
    pub resources: Vec<String>,
    /// The fewest replicas (default 1).
    #[arg(long)]
    pub min: Option<i32>,
    /// The most replicas.
    #[arg(long)]
    pub max: i32,
    /// CPU utilization to keep, percent of the pods' requests (default 80).
    #[arg(long)]
    pub cpu_percent: Option<i32>,
    /// The autoscaler's name (default: the target's).
    #[arg(long)]
    pub name: Option<String>,
}
