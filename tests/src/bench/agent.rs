//! `skiff-bench agent`: a coordinator and an agent (release builds) with 10 running pods.
//! Over a quiet window (at least 3 minutes; `SKIFF_BENCH_QUIET=SECS` to change it) it
//! measures the agent's resident memory including its runtime helper whenever one runs,
//! its CPU, the bytes it and the coordinator write to disk (`/proc/PID/io` write_bytes).
//! The window opens once the node is at rest: the agent has stopped its idle helper
//! (`--helper-idle`, 30 s); what agent and helper held together before is printed too. Then pod start:
//! `skiff apply` of a one-container pod with a present image until a watch sees it
//! Running, against the same pod started directly through the runtime library (sandbox,
//! root filesystem, create, start) measured in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::percentile;
use crate::node::{eventually, AgentProc, Node, IMAGE};
use crate::{binary, cpu_seconds, Coordinator, NetNs, TempDir};

const PODS: usize = 10;

fn quiet_secs() -> u64 {
    super::env_number("SKIFF_BENCH_QUIET", 180)
}

fn start_runs() -> usize {
    super::env_number("SKIFF_BENCH_RUNS", 40).max(30)
}

/// Proportional set size in bytes: private pages plus each shared page divided by its
/// sharers (the agent and its helper map the same binary).
fn pss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The agent's runtime helper: its child running `runtime-helper`.
fn helper_of(agent: u32) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, a)| a.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(agent) && String::from_utf8_lossy(&cmd).contains("runtime-helper") {
            return Some(pid);
        }
    }
    None
}

fn pod_yaml(name: &str, node: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: Never
    command: ["sh", "-c", "exec sleep 100000"]
"#
    )
}

pub fn run() -> anyhow::Result<()> {
    anyhow::ensure!(crate::node::is_root(), "the agent benchmark needs root");
    super::build_release(&["skiff-agent", "skiff-coordinator", "skiff"])?;
    // SKIFF_BENCH_PROFILE=edge measures the agent built as for boards (opt-level z, fat
    // LTO, panic=abort); the default is the release build.
    let profile = std::env::var("SKIFF_BENCH_PROFILE").unwrap_or_else(|_| "release".into());
    if profile != "release" {
        super::build_profile(&profile, &["skiff-agent"])?;
        let release_dir = binary("skiff-agent");
        let target = release_dir
            .parent()
            .and_then(|d| d.parent())
            .context("target directory")?;
        std::env::set_var("SKIFF_AGENT_BIN", target.join(&profile).join("skiff-agent"));
    }
    eprintln!("agent build: {profile} profile");
    let node = Node::new("bench-agent");
    // Pods get addresses on the agent's bridge: everything runs in a namespace of its own.
    let netns = NetNs::new("bench-agent");
    let dir = TempDir::new("bench-agent-coord");
    let c = Coordinator::start_in(dir.path(), crate::free_port(), Some(&netns.name));
    let server = format!("127.0.0.1:{}", c.port);
    let mut agent = AgentProc::start(&node, &server, &c.node_token(), &[], Some(&netns.name));
    eventually(30, "agent connected", || {
        let l = agent.log();
        if l.contains("connected to the coordinator") {
            Ok(())
        } else {
            Err(l)
        }
    });
    let manifests = node.data().join("pods.yaml");
    let all: Vec<String> = (0..PODS)
        .map(|i| pod_yaml(&format!("quiet-{i}"), &node.name))
        .collect();
    std::fs::write(&manifests, all.join("---\n"))?;
    let o = c.skiff(&["apply", "-f", manifests.to_str().unwrap()]);
    anyhow::ensure!(o.status.success(), "apply: {}", crate::err(&o));
    eventually(120, "10 pods Running", || {
        let s = crate::out(&c.skiff(&["get", "pods"]));
        let running = s.lines().filter(|l| l.contains("Running")).count();
        if running == PODS {
            Ok(())
        } else {
            Err(s)
        }
    });
    // Let start-up work (first status writes, events) settle before the window opens.
    std::thread::sleep(Duration::from_secs(5));
    let apid = agent.pid();
    let cpid = c.pid();
    // A node at rest: the agent stops its runtime helper after 30 s without a request
    // (`--helper-idle`); the window opens once it has. What the pair holds while the
    // helper runs is printed too.
    let busy = helper_of(apid).map(|h| {
        (
            crate::rss_bytes(apid).unwrap_or(0) + crate::rss_bytes(h).unwrap_or(0),
            pss_bytes(apid) + pss_bytes(h),
        )
    });
    let t_idle = Instant::now();
    while helper_of(apid).is_some() && t_idle.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
    }
    match (busy, helper_of(apid)) {
        (Some((rss, pss)), None) => eprintln!(
            "runtime helper stopped after {:.0}s idle; with it running agent + helper held RSS {:.1} MB, PSS {:.1} MB",
            t_idle.elapsed().as_secs_f64() + 5.0,
            rss as f64 / 1e6,
            pss as f64 / 1e6
        ),
        (_, Some(_)) => eprintln!("the runtime helper is still running: it is measured with the agent"),
        (None, None) => {}
    }
    let quiet = Duration::from_secs(quiet_secs());
    eprintln!(
        "quiet window: {}s with {PODS} running pods",
        quiet.as_secs()
    );
    let t0 = Instant::now();
    let (a_cpu0, a_w0, c_w0) = (cpu_seconds(apid), write_bytes(apid), write_bytes(cpid));
    // A helper that runs during the window (one the agent started again) counts with the
    // agent: its CPU and writes from when it was first seen to when it was last seen.
    let mut helpers: std::collections::HashMap<u32, [(f64, u64); 2]> = Default::default();
    let mut rss = Vec::new();
    let mut pss = Vec::new();
    let mut last_helper = None;
    while t0.elapsed() < quiet {
        let h = helper_of(apid);
        if let Some(h) = h {
            let now = (cpu_seconds(h), write_bytes(h));
            helpers.entry(h).or_insert([now, now])[1] = now;
        }
        last_helper = h;
        let r = crate::rss_bytes(apid).unwrap_or(0) + h.and_then(crate::rss_bytes).unwrap_or(0);
        rss.push(r as f64 / 1e6);
        pss.push((pss_bytes(apid) + h.map_or(0, pss_bytes)) as f64 / 1e6);
        std::thread::sleep(Duration::from_secs(2));
    }
    let secs = t0.elapsed().as_secs_f64();
    let (h_cpu, h_writes) = helpers.values().fold((0.0, 0), |(t, w), [a, b]| {
        (t + (b.0 - a.0), w + (b.1 - a.1))
    });
    let cpu = (cpu_seconds(apid) - a_cpu0) + h_cpu;
    let cpu_pct = cpu / secs * 100.0;
    let agent_writes = (write_bytes(apid) - a_w0) + h_writes;
    let coord_writes = write_bytes(cpid) - c_w0;
    rss.sort_by(|a, b| a.total_cmp(b));
    pss.sort_by(|a, b| a.total_cmp(b));
    let rss_max = rss.last().copied().unwrap_or(0.0);
    let pss_max = pss.last().copied().unwrap_or(0.0);
    let rss_agent = crate::rss_bytes(apid).unwrap_or(0) as f64 / 1e6;
    let rss_helper = last_helper.and_then(crate::rss_bytes).unwrap_or(0) as f64 / 1e6;
    println!(
        "agent RSS (agent + runtime helper): {rss_max:.1} MB max ({rss_agent:.1} + {rss_helper:.1} MB at the end; target <= 15, goal 8) ratio to target {:.2}; this sum counts the binary's pages both processes share twice",
        rss_max / 15.0
    );
    println!(
        "agent PSS (agent + runtime helper, shared pages split among their sharers): {pss_max:.1} MB max, ratio to target {:.2}",
        pss_max / 15.0
    );
    println!(
        "agent CPU over {secs:.0}s quiet: {cpu_pct:.3}% of a core (target <= 0.5%, goal 0.2%) ratio to target {:.2}",
        cpu_pct / 0.5
    );
    println!("agent disk writes over the window: {agent_writes} bytes (target 0)");
    println!("coordinator disk writes over the window: {coord_writes} bytes (heartbeats and usage reports stay in memory)");

    // Pod start through the whole system (this thread's client in the cluster's namespace).
    netns.enter_this_thread();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cfg = skiff_transport::config::ClientConfig::load(&c.config())?;
    let client = tokio.block_on(skiff_transport::Client::connect(&cfg))?;
    let runs = start_runs();
    let mut through = Vec::new();
    for i in 0..runs {
        let name = format!("start-{i}");
        let path = node.data().join("start.yaml");
        std::fs::write(&path, pod_yaml(&name, &node.name))?;
        let ms = tokio
            .block_on(super::apply_until_running(&client, &name, || {
                let o = crate::command_in(Some(&netns.name), binary("skiff"))
                    .args(["--config", c.config().to_str().unwrap(), "apply", "-f"])
                    .arg(&path)
                    .output()?;
                anyhow::ensure!(o.status.success(), "apply: {}", crate::err(&o));
                Ok(())
            }))?
            .as_secs_f64()
            * 1000.0;
        through.push(ms);
        let o = c.skiff(&["delete", "pod", &name]);
        anyhow::ensure!(o.status.success(), "delete: {}", crate::err(&o));
    }
    // The reference: the same container started straight through the runtime library.
    agent.stop();
    let rt = node.runtime();
    let store = node.store();
    let rec = store.get(IMAGE).context("test image")?;
    let image = skiff_runtime::ImageDefaults::default();
    let mut direct = Vec::new();
    for i in 0..runs {
        let id = format!("direct-{i}");
        let t = Instant::now();
        rt.create_sandbox(&skiff_runtime::SandboxConfig {
            id: id.clone(),
            hostname: id.clone(),
            ..Default::default()
        })?;
        let rootfs = store.prepare_rootfs(&id, &rec)?;
        let cfg = skiff_runtime::ContainerConfig {
            name: id.clone(),
            command: Some(vec!["sleep".into(), "100000".into()]),
            log_path: node.log_path(&id),
            ..Default::default()
        };
        rt.create_container(&id, &id, &cfg, &image, &rootfs.path)?;
        rt.start_container(&id)?;
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
        rt.remove_sandbox(&id)?;
        store.remove_rootfs(&id)?;
    }
    through.sort_by(|a, b| a.total_cmp(b));
    direct.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&through, 50.0), percentile(&through, 99.0));
    let d50 = percentile(&direct, 50.0);
    println!(
        "pod start (apply -> watch sees Running), {runs} pods: p50 {p50:.1} ms, p99 {p99:.1} ms (target 100/300, goal 50/200)"
    );
    println!(
        "same container straight through the runtime: p50 {d50:.1} ms; control-plane path / runtime = {:.2}",
        p50 / d50
    );
    println!(
        "agent ({profile} build): RSS {rss_max:.1} MB (PSS {pss_max:.1} MB), CPU {cpu_pct:.3}%, writes {agent_writes} B (coordinator {coord_writes} B), pod start p50 {p50:.0} ms p99 {p99:.0} ms"
    );
    Ok(())
}
