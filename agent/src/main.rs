//! `skiff-agent`: the node agent. This build carries the node operator commands (images and
//! one-off containers, as containerd's `ctr` gives) and the runtime helper; joining a
//! cluster and syncing pods come with the agent issue, and until then the bare command says
//! so instead of pretending.

mod ops;

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
    #[command(subcommand)]
    pub command: Option<Command>,
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
    // The runtime helper must be a single-threaded process: decide before anything else.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "runtime-helper")
    {
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
        None => {
            eprintln!(
                "skiff-agent {}: joining a cluster and running its pods land with the agent issue; this build has the node operator commands (image, run, ps, rm): see --help",
                skiff_api::VERSION
            );
            2
        }
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
