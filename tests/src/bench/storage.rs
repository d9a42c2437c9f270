//! `skiff-bench storage`: a real agent and coordinator; a pod with a fresh `local-path`
//! claim against the same pod with an `emptyDir`, apply → Running, `SKIFF_BENCH_RUNS` (20)
//! of each, interleaved so both see the same noise; Running as a pod watch sees it. Prints the medians and their ratio
//! (goal ≤ 1.2×). The claim's pod is scheduled, its volume provisioned and bound, and
//! the pod bound, in one pass of the scheduler; the node makes the directory.

use crate::node::{eventually, AgentProc, Node, IMAGE};
use crate::{out, Coordinator, NetNs, TempDir};

fn manifest(name: &str, claim: bool) -> String {
    let volume = if claim {
        format!("persistentVolumeClaim: {{claimName: {name}}}")
    } else {
        "emptyDir: {}".to_string()
    };
    let pvc = if claim {
        format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n---\n")
    } else {
        String::new()
    };
    format!("{pvc}apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {IMAGE}\n    command: [sleep, '3600']\n    volumeMounts: [{{name: data, mountPath: /data}}]\n  volumes:\n  - name: data\n    {volume}\n")
}

/// Applies the manifest and returns the seconds until a watch sees the pod Running.
fn time_to_running(w: &Watcher, c: &Coordinator, name: &str, claim: bool) -> anyhow::Result<f64> {
    let path = c.data_dir.join(format!("{name}.yaml"));
    std::fs::write(&path, manifest(name, claim))?;
    let took = w
        .tokio
        .block_on(super::apply_until_running(&w.client, name, || {
            let o = c.skiff(&["apply", "-f", path.to_str().unwrap()]);
            anyhow::ensure!(o.status.success(), "apply: {}", crate::err(&o));
            Ok(())
        }))?;
    Ok(took.as_secs_f64())
}

/// A connection to the coordinator that watches pods, from the cluster's namespace.
struct Watcher {
    tokio: tokio::runtime::Runtime,
    client: skiff_transport::Client,
}

fn remove(c: &Coordinator, name: &str, claim: bool) -> anyhow::Result<()> {
    let o = c.skiff(&["delete", "pod", name, "--force"]);
    anyhow::ensure!(o.status.success(), "{}", crate::err(&o));
    if claim {
        let o = c.skiff(&["delete", "pvc", name, "--wait=false"]);
        anyhow::ensure!(o.status.success(), "{}", crate::err(&o));
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the benchmark.
pub fn run() -> anyhow::Result<()> {
    crate::node::require_root();
    super::build_release(&["skiff-agent", "skiff-coordinator", "skiff"])?;
    let runs: usize = super::env_number("SKIFF_BENCH_RUNS", 20);
    let netns = NetNs::new("stob");
    let dir = TempDir::new("stob-coord");
    let c = Coordinator::start_in(dir.path(), crate::free_port(), Some(&netns.name));
    let node = Node::new("stob");
    let _agent = AgentProc::start(
        &node,
        &format!("127.0.0.1:{}", c.port),
        &c.node_token(),
        &[],
        Some(&netns.name),
    );
    super::wait_node_ready(&c);
    netns.enter_this_thread();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cfg = skiff_transport::config::ClientConfig::load(&c.config())?;
    let client = tokio.block_on(skiff_transport::Client::connect(&cfg))?;
    let w = Watcher { tokio, client };
    // One of each first, untimed: the image is unpacked, the helper started.
    for claim in [false, true] {
        time_to_running(&w, &c, "warm", claim)?;
        remove(&c, "warm", claim)?;
    }
    let (mut empty, mut claimed) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let e = time_to_running(&w, &c, &format!("e{i}"), false)?;
        let p = time_to_running(&w, &c, &format!("p{i}"), true)?;
        println!(
            "  run {}: emptyDir {:.3} s, local-path claim {:.3} s",
            i + 1,
            e,
            p
        );
        empty.push(e);
        claimed.push(p);
        remove(&c, &format!("e{i}"), false)?;
        remove(&c, &format!("p{i}"), true)?;
    }
    let (e, p) = (median(empty), median(claimed));
    println!(
        "storage: median of {runs}: apply → Running with a fresh local-path claim {p:.3} s, with an emptyDir {e:.3} s (reference): {:.2}x (goal ≤ 1.2x)",
        p / e
    );
    // The claims go with their volumes and directories once the pods are gone.
    eventually(60, "every provisioned volume gone", || {
        let s = out(&c.skiff(&["get", "pv"]));
        if s.trim().is_empty() || s.contains("No resources") {
            Ok(())
        } else {
            Err(s)
        }
    });
    Ok(())
}
