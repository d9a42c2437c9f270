//! The node operator commands: images, one-off containers, and the runtime's containers.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skiff_images::{ImageRecord, ImageStore, Progress, RegistryConfig};
use skiff_runtime::{
    ContainerConfig, ContainerState, ImageDefaults, Resources, Runtime, RuntimeConfig,
    SandboxConfig, Security,
};

use crate::{Args, Command, ImageCmd, RunArgs};

use crate::error::Error;

pub fn run(args: &Args, cmd: &Command) -> Result<i32, Error> {
    match cmd {
        Command::Image { cmd } => image(args, cmd),
        Command::Run(r) => run_container(args, r),
        Command::Ps => ps(args),
        Command::Rm { ids } => rm(args, ids),
        Command::CleanNetwork => {
            let node = node_name(args);
            crate::network::nft::remove(&node)?;
            crate::network::pod_net::remove_overlay(&node)?;
            Ok(0)
        }
        Command::RuntimeHelper => Ok(0),
    }
}

/// Opens the image store, first importing any new archive dropped in `<data-dir>/images/`
/// (the airgap directory, read whenever the agent starts).
pub fn store(args: &Args) -> Result<ImageStore, Error> {
    let store = ImageStore::open(&args.data_dir.join("content"))?;
    for (path, result) in store.import_airgap(&args.data_dir.join("images")) {
        match result {
            Ok(recs) => {
                for r in recs {
                    eprintln!("imported {} from {}", r.familiar_name(), path.display());
                }
            }
            Err(e) => eprintln!("warning: {}: {e}", path.display()),
        }
    }
    Ok(store)
}

pub fn registries(args: &Args) -> Result<RegistryConfig, Error> {
    let path = args
        .registries
        .clone()
        .unwrap_or_else(|| args.data_dir.join("registries.yaml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.registries.is_none() => {
            return Ok(RegistryConfig::default())
        }
        Err(e) => {
            return Err(Error::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    let docs = skiff_api::yaml::parse_documents(&text).map_err(|e| Error::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    match docs.into_iter().next() {
        None => Ok(RegistryConfig::default()),
        Some(d) => Ok(serde_json::from_value(d.value).map_err(|e| Error::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?),
    }
}

/// Docker-style sizes: 1.2MB.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes}B"),
        1_000..1_000_000 => format!("{:.1}kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}MB", b / 1e6),
        _ => format!("{:.2}GB", b / 1e9),
    }
}

fn image(args: &Args, cmd: &ImageCmd) -> Result<i32, Error> {
    let store = store(args)?;
    match cmd {
        ImageCmd::Import { base_name, files } => {
            for f in files {
                for rec in store.import(f, base_name.as_deref())? {
                    println!(
                        "imported {} ({})",
                        rec.familiar_name(),
                        &rec.id().to_string()[..19]
                    );
                }
            }
        }
        ImageCmd::Ls => {
            let mut rows = vec![(
                "IMAGE".to_string(),
                "IMAGE ID".to_string(),
                "SIZE".to_string(),
            )];
            for rec in store.list() {
                rows.push((
                    rec.familiar_name(),
                    rec.id().short().to_string(),
                    human(rec.size),
                ));
            }
            let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            for (n, id, size) in rows {
                println!("{n:<w0$}   {id:<12}   {size}");
            }
        }
        ImageCmd::Pull { reference } => {
            let rec = pull(&store, &registries(args)?, reference)?;
            println!(
                "pulled {} ({})",
                rec.familiar_name(),
                &rec.id().to_string()[..19]
            );
        }
        ImageCmd::Rm { references } => {
            for r in references {
                let rec = store.remove(r)?;
                println!("untagged {}", rec.familiar_name());
            }
            let report = store.gc()?;
            println!(
                "removed {} blobs and {} snapshots ({})",
                report.blobs,
                report.snapshots,
                human(report.bytes)
            );
        }
    }
    Ok(0)
}

/// Per-layer progress lines on stderr; redrawn in place on a terminal.
struct Bars {
    tty: bool,
    order: Vec<String>,
    lines: HashMap<String, String>,
    drawn: usize,
    last: Instant,
}

impl Bars {
    fn update(&mut self, p: Progress) {
        let mut force = false;
        match p {
            Progress::Resolved { layers, .. } => {
                for (d, size) in layers {
                    let key = d.short().to_string();
                    self.order.push(key.clone());
                    self.lines.insert(key, format!("waiting ({})", human(size)));
                }
                force = true;
            }
            Progress::Layer {
                digest,
                done,
                total,
            } => {
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                self.lines.insert(
                    digest.short().to_string(),
                    format!("downloading {} / {} ({pct}%)", human(done), human(total)),
                );
            }
            Progress::LayerDone { digest, cached } => {
                let msg = if cached { "already present" } else { "done" };
                self.lines
                    .insert(digest.short().to_string(), msg.to_string());
                if !self.tty {
                    eprintln!("{}: {msg}", digest.short());
                }
                force = true;
            }
        }
        if self.tty && (force || self.last.elapsed() > Duration::from_millis(100)) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let mut err = std::io::stderr().lock();
        if self.drawn > 0 {
            let _ = write!(err, "\x1b[{}A", self.drawn);
        }
        for k in &self.order {
            let _ = writeln!(
                err,
                "\x1b[2K{k}: {}",
                self.lines.get(k).map(String::as_str).unwrap_or("")
            );
        }
        self.drawn = self.order.len();
        self.last = Instant::now();
    }
}

fn pull(store: &ImageStore, regs: &RegistryConfig, reference: &str) -> Result<ImageRecord, Error> {
    let bars = Mutex::new(Bars {
        tty: std::io::stderr().is_terminal(),
        order: Vec::new(),
        lines: HashMap::new(),
        drawn: 0,
        last: Instant::now(),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = |p: Progress| bars.lock().unwrap().update(p);
    let rec = rt.block_on(store.pull(reference, regs, &report))?;
    let mut b = bars.lock().unwrap();
    if b.tty {
        b.draw();
    }
    Ok(rec)
}

pub fn node_name(args: &Args) -> String {
    args.name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "node".into())
    })
}

pub fn runtime(args: &Args) -> Result<Runtime, Error> {
    let exe = std::env::current_exe()?;
    let name: String = node_name(args)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Runtime::new(RuntimeConfig {
        run_dir: args.data_dir.join("run"),
        cgroup_parent: format!("/skiff/{name}"),
        helper: vec![exe.into_os_string(), "runtime-helper".into()],
    })?)
}

pub fn defaults(store: &ImageStore, rec: &ImageRecord) -> Result<ImageDefaults, Error> {
    let cfg = store.config(rec)?.config;
    Ok(ImageDefaults {
        entrypoint: cfg.entrypoint,
        cmd: cfg.cmd,
        env: cfg.env.unwrap_or_default(),
        working_dir: cfg.working_dir,
        user: cfg.user,
        stop_signal: cfg.stop_signal,
    })
}

fn random_id() -> String {
    crate::util::random_hex(12)
}

/// `skiff-agent run`'s container: its command, `--user`, `--memory`, `--cpus`,
/// `--pids-limit` and `-e` flags, logging to `log_path`.
fn run_config(r: &RunArgs, id: &str, log_path: &std::path::Path) -> Result<ContainerConfig, Error> {
    let mut security = Security::default();
    if let Some(u) = &r.user {
        let (uid, gid) = u
            .split_once(':')
            .map(|(a, b)| (a, Some(b)))
            .unwrap_or((u, None));
        security.run_as_user = Some(
            uid.parse()
                .map_err(|_| Error::flag(format!("--user {u:?}: want uid or uid:gid")))?,
        );
        if let Some(g) = gid {
            security.run_as_group = Some(
                g.parse()
                    .map_err(|_| Error::flag(format!("--user {u:?}: want uid or uid:gid")))?,
            );
        }
    }
    let quantity =
        |flag: &str, v: &Option<String>| -> Result<Option<skiff_api::quantity::Quantity>, Error> {
            v.as_deref()
                .map(|s| {
                    skiff_api::quantity::Quantity::parse(s)
                        .map_err(|e| Error::flag(format!("--{flag} {s:?}: {}", e.0)))
                })
                .transpose()
        };
    let memory = quantity("memory", &r.memory)?.map(|q| q.value() as u64);
    let cpus = quantity("cpus", &r.cpus)?.map(|q| q.millis() as u64);
    let mut env = Vec::new();
    for e in &r.env {
        let (k, v) = e
            .split_once('=')
            .ok_or_else(|| Error::flag(format!("-e {e:?}: want KEY=VALUE")))?;
        env.push((k.to_string(), v.to_string()));
    }
    Ok(ContainerConfig {
        name: id.to_string(),
        args: if r.command.is_empty() {
            None
        } else {
            Some(r.command.clone())
        },
        env,
        resources: Resources {
            cpu_request_millis: cpus,
            cpu_limit_millis: cpus,
            memory_limit: memory,
            pids_limit: r.pids_limit,
        },
        security,
        log_path: log_path.to_path_buf(),
        ..Default::default()
    })
}

fn run_container(args: &Args, r: &RunArgs) -> Result<i32, Error> {
    // Signals go to a thread that stops the container; block them before threads exist.
    let mut sigs = nix::sys::signal::SigSet::empty();
    sigs.add(nix::sys::signal::Signal::SIGINT);
    sigs.add(nix::sys::signal::Signal::SIGTERM);
    sigs.thread_block()?;

    let store = store(args)?;
    let rec = match store.get(&r.image) {
        Some(rec) => rec,
        None => pull(&store, &registries(args)?, &r.image)?,
    };
    let image = defaults(&store, &rec)?;
    let id = format!("run-{}", random_id());
    let log_path = args.data_dir.join("logs/run").join(format!("{id}.log"));
    let config = run_config(r, &id, &log_path)?;
    let runtime = Arc::new(runtime(args)?);
    runtime.create_sandbox(&SandboxConfig {
        id: id.clone(),
        hostname: id.clone(),
        host_network: r.net_host,
        ..Default::default()
    })?;
    // The sandbox (and container), the root filesystem and the log of this run.
    let remove = |runtime: &Runtime| -> Result<(), Error> {
        runtime.remove_sandbox(&id)?;
        store.remove_rootfs(&id)?;
        let _ = std::fs::remove_file(&log_path);
        Ok(())
    };
    let started = (|| -> Result<(), Error> {
        let rootfs = store.prepare_rootfs(&id, &rec)?;
        runtime.create_container(&id, &id, &config, &image, &rootfs.path)?;
        runtime.start_container(&id)?;
        Ok(())
    })();
    if let Err(e) = started {
        let _ = remove(&runtime);
        return Err(e);
    }
    {
        let runtime = runtime.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while sigs.wait().is_ok() {
                n += 1;
                let sig = if n == 1 { libc::SIGTERM } else { libc::SIGKILL };
                let _ = runtime.kill(&id, sig);
            }
        });
    }
    let mut follow = skiff_runtime::logs::Follower::new(&log_path, true)?;
    let print = |entries: Vec<skiff_runtime::logs::LogEntry>| {
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        for e in entries {
            let w: &mut dyn Write = match e.stream {
                skiff_runtime::logs::Stream::Stdout => &mut out,
                skiff_runtime::logs::Stream::Stderr => &mut err,
            };
            let _ = w.write_all(&e.content);
            if !e.partial {
                let _ = w.write_all(b"\n");
            }
        }
        let _ = out.flush();
    };
    let exit = loop {
        print(follow.poll()?);
        if let Some(exit) = runtime.wait(&id, Some(Duration::from_millis(20)))? {
            break exit;
        }
    };
    print(follow.poll()?);
    if exit.oom_killed {
        eprintln!("{id}: OOMKilled");
    }
    if r.rm {
        remove(&runtime)?;
    } else {
        eprintln!(
            "{id}: kept (skiff-agent rm {id} removes it; its log is {})",
            log_path.display()
        );
    }
    Ok(exit.exit_code)
}

fn ps(args: &Args) -> Result<i32, Error> {
    let runtime = runtime(args)?;
    println!(
        "{:<24} {:<24} {:<10} {:<8} CREATED",
        "CONTAINER", "SANDBOX", "STATE", "PID"
    );
    for c in runtime.list()? {
        let state = match &c.state {
            ContainerState::Created => "created".to_string(),
            ContainerState::Running => "running".to_string(),
            ContainerState::Exited(e) => format!("exited({})", e.exit_code),
            ContainerState::Unknown => "unknown".to_string(),
        };
        let pid = c.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<24} {:<24} {:<10} {:<8} {}",
            c.id, c.sandbox, state, pid, c.created_at
        );
    }
    Ok(0)
}

fn rm(args: &Args, ids: &[String]) -> Result<i32, Error> {
    let runtime = runtime(args)?;
    let store = store(args)?;
    // Container → sandbox, read once; a sandbox goes with its last container.
    let mut sandbox_of: HashMap<String, String> = runtime
        .list()?
        .into_iter()
        .map(|c| (c.id, c.sandbox))
        .collect();
    let mut code = 0;
    for id in ids {
        let Some(sandbox) = sandbox_of.remove(id) else {
            eprintln!("error: container {id} not found");
            code = 1;
            continue;
        };
        runtime.remove_container(id)?;
        store.remove_rootfs(id)?;
        if !sandbox_of.values().any(|s| *s == sandbox) {
            runtime.remove_sandbox(&sandbox)?;
        }
        println!("{id}");
    }
    Ok(code)
}
