//! `skiff-bench runtime`: the lifecycle create → start → exit → delete of a `/bin/true`
//! container, interleaved, through skiff's runtime (its real path: the library in this
//! process, the helper process, a monitor per container, libcontainer), `crun run` and
//! `runc run`, all on the same rootfs and the same OCI spec (the one skiff generates: default
//! seccomp profile, capabilities, masked paths, joining one pod sandbox's namespaces).
//!
//! crun refuses this machine's hybrid cgroup layout while the empty cgroup2 is mounted at
//! /sys/fs/cgroup/unified, so the whole benchmark runs in a private mount namespace with it
//! unmounted: all three see the same (v1) layout.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::percentile;
use crate::node::{Node, IMAGE};

fn iterations() -> usize {
    super::env_number("SKIFF_BENCH_RUNS", 50).max(5)
}

/// Enters a private mount namespace without the cgroup2 mount. Must run before any thread.
pub fn enter_private_mount_namespace() -> anyhow::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare mount namespace")?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making mounts private")?;
    if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        nix::mount::umount("/sys/fs/cgroup/unified").context("unmounting the empty cgroup2")?;
    }
    Ok(())
}

fn ensure_installed(tools: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| Command::new(t).arg("--version").output().is_err())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {}", missing.join(" "));
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    anyhow::ensure!(
        status.success(),
        "apt-get install {} failed",
        missing.join(" ")
    );
    Ok(())
}

fn stats(name: &str, mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50, p95) = (percentile(&v, 50.0), percentile(&v, 95.0));
    println!("{name:<28} median {p50:>7.2} ms   p95 {p95:>7.2} ms");
    p50
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run() -> anyhow::Result<()> {
    anyhow::ensure!(crate::node::is_root(), "the runtime benchmark needs root");
    ensure_installed(&["runc", "crun"])?;
    super::build_release(&["skiff-agent"])?;
    let node = Node::new("bench-runtime");
    let rt = node.runtime();
    let store = node.store();
    let rec = store.get(IMAGE).context("test image")?;
    // One plain rootfs directory for all three (no per-run overlay: crun and runc have none).
    let rootfs = node.data().join("bench-rootfs");
    std::fs::create_dir_all(&rootfs)?;
    for layer in store.unpack(&rec)? {
        copy_tree(&layer, &rootfs)?;
    }
    rt.create_sandbox(&skiff_runtime::SandboxConfig {
        id: "bench".into(),
        hostname: "bench".into(),
        ..Default::default()
    })?;
    let image = skiff_runtime::ImageDefaults::default();
    let config = |id: &str| skiff_runtime::ContainerConfig {
        name: id.into(),
        command: Some(vec!["/bin/true".into()]),
        log_path: node.log_path(id),
        ..Default::default()
    };
    // The spec skiff generates, reused for crun and runc.
    rt.create_container("bench", "template", &config("template"), &image, &rootfs)?;
    let spec_text = std::fs::read_to_string(
        node.data()
            .join("run/containers/template/bundle/config.json"),
    )?;
    let precompiled = node
        .data()
        .join("run/containers/template/bundle/seccomp.bpf")
        .exists();
    rt.remove_container("template")?;
    let mut spec: serde_json::Value = serde_json::from_str(&spec_text)?;
    // skiff hands libcontainer the seccomp program precompiled (bundle/seccomp.bpf) and takes
    // the profile out of config.json; crun and runc get the same profile in the spec.
    if precompiled {
        anyhow::ensure!(
            spec["linux"]["seccomp"].is_null(),
            "a precompiled profile is not also in the spec"
        );
        let caps: Vec<String> = skiff_runtime::spec::DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        spec["linux"]["seccomp"] =
            serde_json::to_value(skiff_runtime::seccomp::default_profile(&caps))?;
    }
    anyhow::ensure!(
        !spec["linux"]["seccomp"].is_null(),
        "crun and runc must get the seccomp profile"
    );
    let bundle = node.data().join("bench-bundle");
    std::fs::create_dir_all(&bundle)?;

    let n = iterations();
    let (mut skiff, mut crun, mut runc) = (Vec::new(), Vec::new(), Vec::new());
    let mut stages: Vec<[f64; 4]> = Vec::new();
    for i in 0..n {
        let id = format!("s{i}");
        let t = Instant::now();
        rt.create_container("bench", &id, &config(&id), &image, &rootfs)?;
        let t1 = t.elapsed();
        rt.start_container(&id)?;
        let t2 = t.elapsed();
        let exit = rt
            .wait(&id, Some(Duration::from_secs(30)))?
            .context("container did not exit")?;
        let t3 = t.elapsed();
        rt.remove_container(&id)?;
        skiff.push(ms(t.elapsed()));
        stages.push([ms(t1), ms(t2 - t1), ms(t3 - t2), ms(t.elapsed() - t3)]);
        anyhow::ensure!(
            exit.exit_code == 0,
            "skiff container exited {}",
            exit.exit_code
        );
        let _ = std::fs::remove_file(node.log_path(&id));
        for (tool, samples) in [("crun", &mut crun), ("runc", &mut runc)] {
            let id = format!("{tool}{i}");
            spec["linux"]["cgroupsPath"] = format!("{}/podbench/{id}", node.cgroup_parent()).into();
            std::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec)?)?;
            let t = Instant::now();
            let out = Command::new(tool)
                .args([
                    "--root",
                    node.data().join(format!("{tool}-state")).to_str().unwrap(),
                    "run",
                    "--bundle",
                ])
                .arg(&bundle)
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()?;
            samples.push(ms(t.elapsed()));
            anyhow::ensure!(
                out.status.success(),
                "{tool} run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Pod start: sandbox + one container running.
    let mut pod = Vec::new();
    for i in 0..n.min(30) {
        let (p, c) = (format!("pod{i}"), format!("pc{i}"));
        let t = Instant::now();
        rt.create_sandbox(&skiff_runtime::SandboxConfig {
            id: p.clone(),
            hostname: p.clone(),
            ..Default::default()
        })?;
        rt.create_container(
            &p,
            &c,
            &skiff_runtime::ContainerConfig {
                command: Some(vec!["sleep".into(), "60".into()]),
                ..config(&c)
            },
            &image,
            &rootfs,
        )?;
        rt.start_container(&c)?;
        pod.push(ms(t.elapsed()));
        rt.remove_sandbox(&p)?;
        let _ = std::fs::remove_file(node.log_path(&c));
    }
    let helper_rss = rt.helper_pid().and_then(crate::rss_bytes).unwrap_or(0);
    println!("runtime benchmark: create → start → exit → delete of /bin/true, {n} runs each, interleaved, same rootfs and spec");
    let s = stats("skiff (helper + libcontainer)", skiff);
    let c = stats("crun run", crun);
    let r = stats("runc run", runc);
    let p = stats("skiff pod start (sandbox+1)", pod);
    let _ = p;
    for (k, name) in ["create", "start", "wait", "delete"].iter().enumerate() {
        stats(
            &format!("  skiff stage {name}"),
            stages.iter().map(|s| s[k]).collect(),
        );
    }
    println!("skiff/runc median ratio = {:.2}", s / r);
    println!("runtime helper RSS: {:.1} MB", helper_rss as f64 / 1e6);
    println!("ratio={:.2}", s / c);
    rt.remove_sandbox("bench")?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()?;
    anyhow::ensure!(status.success(), "copying the rootfs failed");
    Ok(())
}
