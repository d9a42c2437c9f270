//! `skiff-bench network`: a client pod on one node and a server pod on another (two agents
//! in their own network namespaces on a bridged LAN), measured through the Service's
//! ClusterIP and, as the reference in the same run, to the server pod's IP directly:
//! - throughput on one TCP connection (MB/s; target ≥ 0.9 of direct);
//! - round-trip latency of one byte on one connection (p50, p99; target ≤ 100 µs added);
//! - new connections per second (connect, one round trip, close);
//! - endpoint propagation: from `skiff apply` of a new Service until its virtual IP answers
//!   in the client pod.
//!
//! Direct and Service runs alternate; medians of `SKIFF_BENCH_RUNS` (default 3).

use crate::lan::{client_pod, Lan};
use crate::node::{eventually, IMAGE};
use crate::{err, out};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn manifests() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: server, labels: {{app: bench}}}}
spec:
  nodeSelector: {{role: backend}}
  terminationGracePeriodSeconds: 1
  containers:
  - name: echo
    image: {IMAGE}
    imagePullPolicy: Never
    command: ["probe", "echo", "9000"]
  - name: sink
    image: {IMAGE}
    imagePullPolicy: Never
    command: ["probe", "sink", "9001"]
---
apiVersion: v1
kind: Service
metadata: {{name: bench}}
spec:
  selector: {{app: bench}}
  ports: [{{name: echo, port: 9000}}, {{name: sink, port: 9001}}]
---
{}"#,
        client_pod()
    )
}

fn probe(l: &Lan, args: &[&str]) -> anyhow::Result<String> {
    let mut a = vec!["exec", "client", "--", "probe"];
    a.extend_from_slice(args);
    let o = l.c.skiff(&a);
    anyhow::ensure!(
        o.status.success(),
        "probe {}: {}{}",
        args.join(" "),
        out(&o),
        err(&o)
    );
    Ok(out(&o).trim().to_string())
}

fn numbers(s: &str) -> Vec<f64> {
    s.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// Runs the benchmark.
pub fn run() -> anyhow::Result<()> {
    crate::node::require_root();
    super::build_release(&["skiff-agent", "skiff-coordinator", "skiff"])?;
    let runs: usize = super::env_number("SKIFF_BENCH_RUNS", 3);
    let l = Lan::new("nb", &["client", "backend"], &[]);
    l.c.apply(&manifests());
    let json = |args: &[&str]| l.c.get_json(args);
    eventually(90, "server and client running, one endpoint", || {
        let ep = json(&["get", "endpoints", "bench"]);
        let c = json(&["get", "pod", "client"]);
        let n = ep["subsets"][0]["addresses"]
            .as_array()
            .map_or(0, |a| a.len());
        (n == 1 && c["status"]["phase"] == "Running")
            .then_some(())
            .ok_or(format!("endpoints {n}, client {}", c["status"]["phase"]))
    });
    let vip = json(&["get", "svc", "bench"])["spec"]["clusterIP"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let pod_ip = json(&["get", "pod", "server"])["status"]["podIP"]
        .as_str()
        .unwrap_or("")
        .to_string();
    println!("network: client pod on one node, server pod on another; Service {vip}, pod {pod_ip}");
    // Warm up both paths.
    eventually(20, "the Service answers", || {
        probe(&l, &["rtt", &format!("{vip}:9000"), "10"]).map_err(|e| e.to_string())
    });
    let (mut tput, mut rtt, mut conns) = (
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
        [Vec::new(), Vec::new()],
    );
    let mut p99 = [Vec::new(), Vec::new()];
    for run in 0..runs {
        for (i, host) in [pod_ip.as_str(), vip.as_str()].into_iter().enumerate() {
            let t = numbers(&probe(&l, &["tput", &format!("{host}:9001"), "3"])?);
            let r = numbers(&probe(&l, &["rtt", &format!("{host}:9000"), "5000"])?);
            let c = numbers(&probe(&l, &["conns", &format!("{host}:9000"), "2"])?);
            anyhow::ensure!(t.len() == 1 && r.len() == 2 && c.len() == 1, "probe output");
            tput[i].push(t[0]);
            rtt[i].push(r[0]);
            p99[i].push(r[1]);
            conns[i].push(c[0]);
            println!(
                "  run {} {:>7}: {:8.1} MB/s  rtt p50 {:6.1} µs p99 {:7.1} µs  {:6.0} conn/s",
                run + 1,
                if i == 0 { "direct" } else { "service" },
                t[0],
                r[0],
                r[1],
                c[0]
            );
        }
    }
    // Propagation: a new Service (fixed ClusterIP) over the running pod, waited for inside
    // the client pod from before it exists.
    let mut prop = Vec::new();
    for run in 0..runs {
        let ip = format!("10.43.250.{}", 10 + run);
        let waiter = {
            let target = format!("{ip}:9000");
            let (cfg, ns) = (l.c.config(), l.lan.name.clone());
            std::thread::spawn(move || {
                crate::command_in(Some(&ns), crate::binary("skiff"))
                    .arg("--config")
                    .arg(&cfg)
                    .args(["exec", "client", "--", "probe", "wait", &target])
                    .output()
            })
        };
        std::thread::sleep(Duration::from_millis(1500));
        let t0 = now_ms();
        l.c.apply(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: prop-{run}}}\nspec:\n  clusterIP: {ip}\n  selector: {{app: bench}}\n  ports: [{{port: 9000}}]\n"
        ));
        let o = waiter
            .join()
            .map_err(|_| anyhow::anyhow!("waiter panicked"))??;
        let t1: u128 = out(&o)
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("probe wait: {}{}", out(&o), err(&o)))?;
        let ms = t1.saturating_sub(t0) as f64;
        println!("  run {}: new Service answering after {ms:.0} ms", run + 1);
        prop.push(ms);
    }
    let (td, ts) = (median(tput[0].clone()), median(tput[1].clone()));
    let (rd, rs) = (median(rtt[0].clone()), median(rtt[1].clone()));
    let (pd, ps) = (median(p99[0].clone()), median(p99[1].clone()));
    let (cd, cs) = (median(conns[0].clone()), median(conns[1].clone()));
    let pr = median(prop);
    println!("network: medians of {runs}, Service VIP against the pod IP directly (reference, same run):");
    println!(
        "  throughput     {ts:8.1} MB/s vs {td:8.1} MB/s direct: {:.2}x (target >= 0.9)",
        ts / td
    );
    println!(
        "  latency p50    {rs:8.1} µs   vs {rd:8.1} µs direct: +{:.1} µs (target <= 100 µs added)",
        rs - rd
    );
    println!(
        "  latency p99    {ps:8.1} µs   vs {pd:8.1} µs direct: +{:.1} µs",
        ps - pd
    );
    println!(
        "  new conns      {cs:8.0} /s   vs {cd:8.0} /s direct: {:.2}x",
        cs / cd
    );
    println!("  propagation    {pr:8.0} ms from apply to a new Service answering in a pod");
    println!(
        "network: {:.2}x direct throughput, +{:.1} µs p50 through a Service VIP",
        ts / td,
        rs - rd
    );
    Ok(())
}
