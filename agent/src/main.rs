//! `skiff-agent`: the node agent. Joining, pod sync, probes and the runtime arrive with
//! the agent and runtime issues; until then this binary says so instead of pretending.

use clap::Parser;

/// skiff's node agent.
#[derive(Parser, Debug)]
#[command(name = "skiff-agent", version = skiff_api::VERSION)]
struct Args {}

fn main() {
    let _ = Args::parse();
    eprintln!("skiff-agent {}: the node agent is not built yet (pod sync, runtime and join land with the agent issue); only --version and --help work", skiff_api::VERSION);
    std::process::exit(2);
}
