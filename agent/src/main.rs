//! `skiff-agent`: the node agent. Without a subcommand it joins its coordinator and runs
//! the pods bound to the node; the subcommands are the node operator's tools (images and
//! one-off containers, as containerd's `ctr` gives) and the runtime helper.

mod daemon;
mod error;
mod link;
mod local;
mod network;
mod ops;
mod pods;
mod services;
mod state;
mod util;
mod volumes;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// skiff's node agent.
#[derive(Parser, Debug)]
#[command(name = "skiff-agent", version = skiff_api::VERSION)]
pub struct Args {
    /// The agent's state: images, container state, logs. Agents sharing a machine need
    /// different ones.
    #[arg(long, global = true, default_value = "/var/lib/skiff/agent")]
    pub data_dir: PathBuf,
    /// Node name; pods' cgroups go under /skiff/<name>. Defaults to the hostname.
    #[arg(long, global = true)]
    pub name: Option<String>,
    /// Registry credentials, CAs and insecure registries (default: <data-dir>/registries.yaml).
    #[arg(long, global = true)]
    pub registries: Option<PathBuf>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The agent's own settings (without a subcommand).
#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    /// The coordinator, HOST:PORT (needed to join; later starts use the saved credentials).
    #[arg(long)]
    pub server: Option<String>,
    /// Join token (`skiff token create`), used once: the node keeps its certificate.
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Node labels, k=v,k2=v2.
    #[arg(long)]
    pub labels: Option<String>,
    /// The node's address (default: the one that reaches the coordinator).
    #[arg(long)]
    pub node_ip: Option<std::net::IpAddr>,
    /// First delay before restarting a crashed container; it doubles up to 30 times this,
    /// and resets after 60 times this of running (the kubelet's 10s, 5m, 10m).
    #[arg(long, default_value = "10s")]
    pub restart_backoff: String,
    /// How often the node renews its lease.
    #[arg(long, default_value = "10s")]
    pub heartbeat_interval: String,
    /// How often the node reports CPU and memory use.
    #[arg(long, default_value = "15s")]
    pub usage_interval: String,
    /// Most pods the node takes.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// The Ingress class this node serves; Ingresses without a class are served too.
    #[arg(long, default_value = "skiff")]
    pub ingress_class: String,
    /// Port serving Ingresses over HTTP, on every address of the node (0: none). Held
    /// only while some Ingress is served.
    #[arg(long, default_value_t = 80)]
    pub ingress_http_port: u16,
    /// Port serving Ingresses over HTTPS (0: none).
    #[arg(long, default_value_t = 443)]
    pub ingress_https_port: u16,
    /// How pods reach other nodes' pods: host-gw (routes; the nodes share a link), vxlan
    /// (an overlay, UDP 8472) or auto (routes to nodes on a shared subnet, the overlay to
    /// the others). A pair of nodes uses the overlay if either end says vxlan.
    #[arg(long, value_enum, default_value_t = crate::network::overlay::Backend::Auto)]
    pub pod_network: crate::network::overlay::Backend,
    /// Stop the runtime helper (the process that creates containers) after this long
    /// without a request, returning its memory; the next pod start or exec starts it
    /// again. 0 keeps it running.
    #[arg(long, default_value = "30s")]
    pub helper_idle: String,
    /// Where the built-in `local-path` storage class keeps this node's volumes (one
    /// directory per claim). Default: <data-dir>/local-path.
    #[arg(long)]
    pub local_path_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage the node's images.
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Run one container to completion, streaming its output; exits with its exit code.
    Run(RunArgs),
    /// List the containers the runtime holds.
    Ps,
    /// Remove containers (killing them if they still run).
    Rm {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove what the node set up in the kernel for pods' traffic and that outlives the
    /// agent (as its pods do): its masquerade table and its VXLAN device.
    CleanNetwork,
    /// Internal: the single-threaded process that drives libcontainer.
    #[command(hide = true)]
    RuntimeHelper,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Import `docker save` or OCI layout archives (or OCI layout directories).
    Import {
        /// Name for images whose archive carries only a tag.
        #[arg(long)]
        base_name: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List images.
    Ls,
    /// Pull an image from its registry.
    Pull { reference: String },
    /// Remove images and the data no other image uses.
    Rm {
        #[arg(required = true)]
        references: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Remove the container, its root filesystem and its log when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Memory limit (Kubernetes quantity: 64Mi, 1G).
    #[arg(long)]
    pub memory: Option<String>,
    /// CPU limit (0.5, 250m, 2).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Maximum number of processes.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Environment variable K=V (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// User (uid or uid:gid) instead of the image's.
    #[arg(long)]
    pub user: Option<String>,
    /// Share the host's network instead of a private one with only loopback.
    #[arg(long)]
    pub net_host: bool,
    /// The image (pulled first if the node lacks it).
    pub image: String,
    /// Command and arguments (replace the image's cmd, as with docker run).
    #[arg(last = true)]
    pub command: Vec<String>,
}

fn main() {
    skiff_runtime::single_malloc_arena();
    // The runtime helper must be a single-threaded process: decide before anything else.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "runtime-helper")
    {
        // Its code pages are the agent's: keep resident only those the helper runs (the
        // file's pages stay cached for the agent, which evicts them once quiet).
        let _ = skiff_runtime::shed_code_pages(skiff_runtime::PageCache::Keep);
        match skiff_runtime::helper::helper_main() {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("skiff-agent runtime-helper: {e}");
                std::process::exit(1);
            }
        }
    }
    let args = Args::parse();
    let code = match &args.command {
        None => match daemon::run(&args, &args.daemon) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
        Some(Command::RuntimeHelper) => unreachable!("handled above"),
        Some(cmd) => match ops::run(&args, cmd) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}
