//! Liveness, readiness and startup probes with Kubernetes' semantics: exec in the
//! container, an HTTP GET or a TCP connect from inside the pod's network namespace.
//! The results live in shared flags; the pod worker is woken when one changes.

use skiff_api::pod::{Container, ContainerPort, HttpGetAction, Probe};
use skiff_api::IntOrString;
use skiff_runtime::{ExecConfig, Runtime};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Where probes go.
#[derive(Clone)]
pub struct Target {
    pub rt: Arc<Runtime>,
    /// The container's runtime id (exec).
    pub id: String,
    /// The pod's network namespace (`None`: the host's).
    pub netns: Option<PathBuf>,
    /// The address HTTP and TCP probes use unless they name a host.
    pub pod_ip: IpAddr,
    pub ports: Vec<ContainerPort>,
}

/// What one container's probes found.
#[derive(Default)]
pub struct Flags {
    /// The startup probe succeeded (or there is none).
    pub started: AtomicBool,
    /// Readiness (true without a readiness probe once started).
    pub ready: AtomicBool,
    /// Set when liveness (or startup) gave up: the message for the restart, and the
    /// probe's own terminationGracePeriodSeconds if it has one.
    pub failed: Mutex<Option<(String, Option<i64>)>>,
}

impl Flags {
    /// A startup or liveness probe reached its failure threshold: the container is to be
    /// restarted (with the probe's own grace period, if it sets one).
    fn give_up(&self, kind: &str, id: &str, p: &Probe, wake: &UnboundedSender<()>) {
        let msg = format!(
            "Container {} failed {kind} probe, will be restarted",
            c_name(id)
        );
        *self.failed.lock().unwrap() = Some((msg, p.termination_grace_period_seconds));
        let _ = wake.send(());
    }
}

/// A container's running probes; dropping it stops them.
pub struct Handle {
    pub flags: Arc<Flags>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Something that reports probe failures as events.
pub type Report = Arc<dyn Fn(&str, String) + Send + Sync>;

struct Settings {
    initial: Duration,
    period: Duration,
    timeout: Duration,
    success: u32,
    failure: u32,
}

fn settings(p: &Probe) -> Settings {
    let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.unwrap_or(d).max(0) as u64);
    Settings {
        initial: secs(p.initial_delay_seconds, 0),
        period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
        success: p.success_threshold.unwrap_or(1).max(1) as u32,
        failure: p.failure_threshold.unwrap_or(3).max(1) as u32,
    }
}

/// Starts the container's probes.
pub fn start(c: &Container, target: Target, wake: UnboundedSender<()>, report: Report) -> Handle {
    let flags = Arc::new(Flags::default());
    let startup = c.startup_probe.clone();
    let liveness = c.liveness_probe.clone();
    let readiness = c.readiness_probe.clone();
    let f = flags.clone();
    let task = tokio::spawn(async move {
        // An adopted container whose startup probe already passed does not repeat it.
        if let Some(p) = startup.filter(|_| !f.started.load(Ordering::SeqCst)) {
            let s = settings(&p);
            tokio::time::sleep(s.initial).await;
            let mut failures = 0;
            loop {
                match run(&p, &target, s.timeout).await {
                    Ok(()) => break,
                    Err(msg) => {
                        failures += 1;
                        report("Unhealthy", format!("Startup probe failed: {msg}"));
                        if failures >= s.failure {
                            f.give_up("startup", &target.id, &p, &wake);
                            return;
                        }
                    }
                }
                tokio::time::sleep(s.period).await;
            }
        }
        f.started.store(true, Ordering::SeqCst);
        if readiness.is_none() {
            f.ready.store(true, Ordering::SeqCst);
        }
        let _ = wake.send(());
        let live = async {
            let Some(p) = &liveness else {
                return std::future::pending::<()>().await;
            };
            let s = settings(p);
            tokio::time::sleep(s.initial).await;
            let mut failures = 0;
            loop {
                match run(p, &target, s.timeout).await {
                    Ok(()) => failures = 0,
                    Err(msg) => {
                        failures += 1;
                        report("Unhealthy", format!("Liveness probe failed: {msg}"));
                        if failures >= s.failure {
                            f.give_up("liveness", &target.id, p, &wake);
                            return std::future::pending::<()>().await;
                        }
                    }
                }
                tokio::time::sleep(s.period).await;
            }
        };
        let ready = async {
            let Some(p) = &readiness else {
                return;
            };
            let s = settings(p);
            tokio::time::sleep(s.initial).await;
            let (mut ok, mut bad) = (0, 0);
            loop {
                match run(p, &target, s.timeout).await {
                    Ok(()) => {
                        ok += 1;
                        bad = 0;
                        if ok >= s.success && !f.ready.swap(true, Ordering::SeqCst) {
                            let _ = wake.send(());
                        }
                    }
                    Err(msg) => {
                        bad += 1;
                        ok = 0;
                        report("Unhealthy", format!("Readiness probe failed: {msg}"));
                        if bad >= s.failure && f.ready.swap(false, Ordering::SeqCst) {
                            let _ = wake.send(());
                        }
                    }
                }
                tokio::time::sleep(s.period).await;
            }
        };
        tokio::join!(live, ready);
    });
    Handle { flags, task }
}

/// The container name part of a runtime id `<uid>.<name>.<attempt>`.
fn c_name(id: &str) -> &str {
    id.split('.').nth(1).unwrap_or(id)
}

/// Why a probe (or a preStop hook) failed, in the kubelet's words where it has them: the
/// text goes into the container's `Unhealthy` Events.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    #[error("invalid port {0}")]
    InvalidPort(i32),
    #[error("port {0:?} not found in the container's ports")]
    NoSuchPort(String),
    #[error("no port")]
    NoPort,
    #[error("the probe has no action")]
    NoAction,
    #[error("host {0:?}: only IP addresses are supported")]
    HostName(String),
    #[error("HTTPS probes are not supported by this node")]
    Https,
    #[error("dial tcp {addr}: {source}")]
    Dial {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("Get \"{url}\": dial tcp {addr}: {source}")]
    HttpDial {
        url: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("Get \"{url}\": {source}")]
    Http { url: String, source: std::io::Error },
    #[error("Get \"{url}\": malformed HTTP response")]
    Malformed { url: String },
    #[error("HTTP probe failed with statuscode: {0}")]
    Status(u16),
    #[error("command exited with {code}: {output}")]
    Exit { code: i32, output: String },
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    /// The runtime could not start the command, or wait for it.
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("probe thread ended")]
    ThreadEnded,
}

fn port(p: &Option<IntOrString>, ports: &[ContainerPort]) -> Result<u16, ProbeFailure> {
    match p {
        Some(IntOrString::Int(n)) => u16::try_from(*n).map_err(|_| ProbeFailure::InvalidPort(*n)),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            ports
                .iter()
                .find(|cp| cp.name.as_deref() == Some(name))
                .and_then(|cp| cp.container_port)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| ProbeFailure::NoSuchPort(name.clone()))
        }
        None => Err(ProbeFailure::NoPort),
    }
}

/// Runs one probe (or a preStop hook: the same actions).
pub async fn run(p: &Probe, t: &Target, timeout: Duration) -> Result<(), ProbeFailure> {
    let handler = skiff_api::pod::LifecycleHandler {
        exec: p.exec.clone(),
        http_get: p.http_get.clone(),
        tcp_socket: p.tcp_socket.clone(),
    };
    run_action(&handler, t, timeout).await
}

/// Runs an exec, HTTP or TCP action against the container.
pub async fn run_action(
    h: &skiff_api::pod::LifecycleHandler,
    t: &Target,
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    if let Some(e) = &h.exec {
        let rt = t.rt.clone();
        let id = t.id.clone();
        let args = e.command.clone();
        return tokio::task::spawn_blocking(move || exec(&rt, &id, args, timeout))
            .await
            .map_err(|_| ProbeFailure::ThreadEnded)?;
    }
    if let Some(g) = &h.http_get {
        let port = port(&g.port, &t.ports)?;
        let host = host_ip(&g.host, t.pod_ip)?;
        let g = g.clone();
        return in_netns(t.netns.clone(), move || {
            http_get(&g, SocketAddr::new(host, port), timeout)
        })
        .await;
    }
    if let Some(s) = &h.tcp_socket {
        let port = port(&s.port, &t.ports)?;
        let host = host_ip(&s.host, t.pod_ip)?;
        return in_netns(t.netns.clone(), move || {
            TcpStream::connect_timeout(&SocketAddr::new(host, port), timeout)
                .map(|_| ())
                .map_err(|source| ProbeFailure::Dial {
                    addr: SocketAddr::new(host, port),
                    source,
                })
        })
        .await;
    }
    Err(ProbeFailure::NoAction)
}

fn host_ip(host: &Option<String>, pod_ip: IpAddr) -> Result<IpAddr, ProbeFailure> {
    match host.as_deref() {
        None | Some("") => Ok(pod_ip),
        Some(h) => h.parse().map_err(|_| ProbeFailure::HostName(h.to_string())),
    }
}

fn exec(rt: &Runtime, id: &str, args: Vec<String>, timeout: Duration) -> Result<(), ProbeFailure> {
    let mut p = rt.exec(
        id,
        &ExecConfig {
            args,
            ..Default::default()
        },
    )?;
    drop(p.stdin.take());
    let pid = p.pid;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut out = p.stdout.take();
    let mut err = p.stderr.take();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        // Drain both pipes (bounded) so the process never blocks on a full pipe.
        let mut sink = [0u8; 4096];
        if let Some(o) = out.as_mut() {
            while let Ok(n) = o.read(&mut sink) {
                if n == 0 {
                    break;
                }
                if buf.len() < 10 << 10 {
                    buf.extend_from_slice(&sink[..n]);
                }
            }
        }
        if let Some(e) = err.as_mut() {
            while let Ok(n) = e.read(&mut sink) {
                if n == 0 {
                    break;
                }
                if buf.len() < 10 << 10 {
                    buf.extend_from_slice(&sink[..n]);
                }
            }
        }
        let _ = tx.send((p.wait(), buf));
    });
    match rx.recv_timeout(timeout) {
        Ok((Ok(0), _)) => Ok(()),
        Ok((Ok(code), out)) => Err(ProbeFailure::Exit {
            code,
            output: String::from_utf8_lossy(&out).trim().to_string(),
        }),
        Ok((Err(e), _)) => Err(e.into()),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            Err(ProbeFailure::Timeout(timeout))
        }
    }
}

/// Runs `f` on a thread that has entered the pod's network namespace (sockets it makes
/// belong to that namespace); the thread ends with `f`.
async fn in_netns<F>(netns: Option<PathBuf>, f: F) -> Result<(), ProbeFailure>
where
    F: FnOnce() -> Result<(), ProbeFailure> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("probe".into())
        .stack_size(64 << 10)
        .spawn(move || {
            let r = (|| {
                if let Some(ns) = netns {
                    let fd = std::fs::File::open(&ns).map_err(|source| ProbeFailure::Os {
                        what: ns.display().to_string(),
                        source,
                    })?;
                    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                        ProbeFailure::Os {
                            what: "entering the pod's network".into(),
                            source: e.into(),
                        }
                    })?;
                }
                f()
            })();
            let _ = tx.send(r);
        })
        .map_err(|source| ProbeFailure::Os {
            what: "starting the probe's thread".into(),
            source,
        })?;
    rx.await.map_err(|_| ProbeFailure::ThreadEnded)?
}

fn http_get(g: &HttpGetAction, addr: SocketAddr, timeout: Duration) -> Result<(), ProbeFailure> {
    if g.scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
    {
        return Err(ProbeFailure::Https);
    }
    let path = g.path.clone().unwrap_or_else(|| "/".into());
    let url = format!("http://{addr}{path}");
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|source| ProbeFailure::HttpDial {
            url: url.clone(),
            addr,
            source,
        })?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    let mut has_host = false;
    let mut has_agent = false;
    for h in &g.http_headers {
        has_host |= h.name.eq_ignore_ascii_case("host");
        has_agent |= h.name.eq_ignore_ascii_case("user-agent");
        req.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    if !has_host {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has_agent {
        req.push_str("User-Agent: kube-probe/1.30\r\n");
    }
    req.push_str("Accept: */*\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|source| ProbeFailure::Http {
            url: url.clone(),
            source,
        })?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => return Err(ProbeFailure::Http { url, source }),
        }
    }
    let line = String::from_utf8_lossy(&head[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(ProbeFailure::Malformed { url })?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(ProbeFailure::Status(code))
    }
}
