//! `skiff-bench NAME`: skiff's benchmarks, each one command, each printing ratios against
//! a reference measured in the same run.

// Both reference clients (skiff's and etcd's) live in this process: give them the
// allocator the coordinator uses, so neither side is slowed by the bench itself.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let result = match which.as_str() {
        "store" => skiff_tests::bench::store::run(),
        "agent" => skiff_tests::bench::agent::run(),
        "scheduler" => skiff_tests::bench::scheduler::run(),
        "failover" => skiff_tests::bench::failover::run(),
        "scale" => skiff_tests::bench::scale::run(),
        "network" => skiff_tests::bench::network::run(),
        "reboot" => skiff_tests::bench::reboot::run(),
        "front-door" => skiff_tests::bench::front_door::run(),
        "http" => skiff_tests::bench::http::run(),
        "hpa" => skiff_tests::bench::hpa::run(),
        "storage" => skiff_tests::bench::storage::run(),
        // The mount namespace must be entered while this process has one thread.
        "runtime" => skiff_tests::bench::runtime::enter_private_mount_namespace()
            .and_then(|_| skiff_tests::bench::runtime::run()),
        _ => {
            eprintln!("usage: skiff-bench store|runtime|agent|scheduler|failover|scale|network|reboot|front-door|http|hpa|storage\n  store     durable writes/s vs etcd at 1/16/256 clients, apply→watch latency, RSS at 100k objects\n  runtime   container lifecycle vs crun and runc, pod start, helper RSS\n  agent     agent RSS/CPU/disk writes with 10 quiet pods, pod start through the cluster\n  scheduler 10,000 pods onto 1,000 nodes: pure-core bindings/s, and end to end through the store\n  failover  seconds from killing a node to its replicas Running elsewhere\n  scale     1,000 simulated nodes and 10,000 pods: coordinator RSS and CPU\n  network   Service VIP vs pod IP: throughput, latency, conn/s, endpoint propagation\n  reboot    10 pods back after a power cut with no coordinator vs a cold start of 10\n  front-door coordinator RSS and admin p50/p99 under a flood of strangers vs quiet\n  http      kubectl vs skiff get pods -A with 1,000 pods, watch latency HTTPS vs QUIC, RSS of the HTTPS front end\n  hpa       load start to the autoscaler's added replicas Ready, vs the metric interval\n  storage   apply → Running of a pod with a fresh local-path claim vs the same pod with an emptyDir");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("skiff-bench {which}: {e:#}");
        std::process::exit(1);
    }
}
