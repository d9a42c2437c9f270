//! Log, exec and attach streams the coordinator opens on the agent's connection (the node
//! opens no port of its own).

use crate::state::{Agent, PodView};
use skiff_api::wire::{
    ApiError, AttachRequest, ErrorCode, ExecRequest, LogsRequest, StreamFrame, MAX_FRAME_LEN,
};
use skiff_runtime::attach::Frame;
use skiff_runtime::logs::{Follower, LogEntry};
use skiff_runtime::{ContainerState, ExecConfig};
use skiff_transport::frames::{read_frame, write_frame};
use std::io::{Read, Write};
use std::time::Duration;

/// The largest chunk of output sent in one frame.
const CHUNK: usize = 64 << 10;

pub(super) fn error(code: ErrorCode, msg: impl Into<String>) -> StreamFrame {
    StreamFrame::Error(ApiError::new(code, msg))
}

pub(super) fn view(agent: &Agent, ns: &str, pod: &str) -> Result<PodView, StreamFrame> {
    agent
        .pods
        .lock()
        .unwrap()
        .values()
        .find(|e| e.namespace == ns && e.name == pod)
        .map(|e| e.view.lock().unwrap().clone())
        .ok_or_else(|| {
            error(
                ErrorCode::NotFound,
                format!("pod {pod:?} is not running on this node"),
            )
        })
}

fn pick_container(v: &PodView, pod: &str, want: &Option<String>) -> Result<String, StreamFrame> {
    match want {
        Some(c) if v.order.contains(c) => Ok(c.clone()),
        Some(c) => Err(error(
            ErrorCode::BadRequest,
            format!("container {c} is not valid for pod {pod}"),
        )),
        // As kubectl: the first app container by default.
        None => v.first_app.clone().ok_or_else(|| {
            error(
                ErrorCode::BadRequest,
                format!("pod {pod} has no containers"),
            )
        }),
    }
}

/// The runtime id of container `c`'s current attempt.
fn running_attempt(v: &PodView, c: &str) -> Result<String, StreamFrame> {
    v.attempts
        .get(c)
        .and_then(|a| a.last().cloned())
        .ok_or_else(|| {
            error(
                ErrorCode::BadRequest,
                format!("container {c} is not running"),
            )
        })
}

fn format_entries(entries: &[LogEntry], timestamps: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if timestamps {
            out.extend_from_slice(e.time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&e.content);
        if !e.partial {
            out.push(b'\n');
        }
    }
    out
}

async fn send_bytes(send: &mut quinn::SendStream, bytes: &[u8]) -> Result<(), StreamFrame> {
    for chunk in bytes.chunks(CHUNK) {
        write_frame(send, &StreamFrame::Stdout(chunk.to_vec()))
            .await
            .map_err(|e| error(ErrorCode::Internal, e.to_string()))?;
    }
    Ok(())
}

/// What is left of `limitBytes` (none: no limit).
struct Budget(Option<u64>);

impl Budget {
    /// Sends what the budget allows of `bytes`; false once it is spent.
    async fn send(
        &mut self,
        send: &mut quinn::SendStream,
        mut bytes: Vec<u8>,
    ) -> Result<bool, StreamFrame> {
        if let Some(left) = &mut self.0 {
            let n = bytes
                .len()
                .min(usize::try_from(*left).unwrap_or(usize::MAX));
            bytes.truncate(n);
            *left -= n as u64;
        }
        send_bytes(send, &bytes).await?;
        Ok(self.0 != Some(0))
    }
}

pub(super) async fn logs(
    agent: &Agent,
    l: LogsRequest,
    send: &mut quinn::SendStream,
) -> Result<(), StreamFrame> {
    let v = view(agent, &l.namespace, &l.pod)?;
    let c = pick_container(&v, &l.pod, &l.container)?;
    let attempts = v.attempts.get(&c).cloned().unwrap_or_default();
    let id = if l.previous {
        attempts.iter().rev().nth(1).cloned().ok_or_else(|| {
            error(
                ErrorCode::BadRequest,
                format!(
                    "previous terminated container {c:?} in pod {:?} not found",
                    l.pod
                ),
            )
        })?
    } else {
        attempts.last().cloned().ok_or_else(|| {
            error(
                ErrorCode::BadRequest,
                format!("container {c:?} in pod {:?} is waiting to start", l.pod),
            )
        })?
    };
    let rt = agent.rt.clone();
    let st = {
        let id = id.clone();
        tokio::task::spawn_blocking(move || rt.status(&id))
            .await
            .map_err(|e| error(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| error(ErrorCode::NotFound, e.to_string()))?
    };
    let path = st.log_path.clone();
    let entries = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || skiff_runtime::logs::read_all(&p))
            .await
            .map_err(|e| error(ErrorCode::Internal, e.to_string()))?
            .map_err(|e| error(ErrorCode::Internal, format!("{}: {e}", path.display())))?
    };
    // `--since`: lines from that second on (whole seconds, as Kubernetes' times).
    let entries: Vec<LogEntry> = match l.since {
        Some(since) => entries
            .into_iter()
            .filter(|e| skiff_api::util::parse_rfc3339(&e.time).is_none_or(|t| t >= since))
            .collect(),
        None => entries,
    };
    let mut budget = Budget(l.limit_bytes);
    // `--tail` counts whole lines (a partial entry belongs to the line it starts).
    let mut start = 0;
    if let Some(n) = l.tail {
        let mut lines = 0;
        start = entries.len();
        for (i, e) in entries.iter().enumerate().rev() {
            if !e.partial {
                lines += 1;
                if lines > n {
                    break;
                }
            }
            start = i;
        }
        if n == 0 {
            start = entries.len();
        }
    }
    if !budget
        .send(send, format_entries(&entries[start..], l.timestamps))
        .await?
    {
        return Ok(());
    }
    if !l.follow || l.previous {
        return Ok(());
    }
    let mut f =
        Follower::new(&path, false).map_err(|e| error(ErrorCode::Internal, e.to_string()))?;
    loop {
        let batch = f
            .poll()
            .map_err(|e| error(ErrorCode::Internal, e.to_string()))?;
        if !batch.is_empty()
            && !budget
                .send(send, format_entries(&batch, l.timestamps))
                .await?
        {
            return Ok(());
        }
        let running = agent
            .rt
            .status(&id)
            .is_ok_and(|s| matches!(s.state, ContainerState::Running | ContainerState::Created));
        if !running {
            let last = f
                .poll()
                .map_err(|e| error(ErrorCode::Internal, e.to_string()))?;
            budget
                .send(send, format_entries(&last, l.timestamps))
                .await?;
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = send.stopped() => return Ok(()),
        }
    }
}

pub(super) async fn exec(
    agent: &Agent,
    e: ExecRequest,
    send: &mut quinn::SendStream,
    recv: quinn::RecvStream,
) -> Result<(), StreamFrame> {
    let v = view(agent, &e.namespace, &e.pod)?;
    let c = pick_container(&v, &e.pod, &e.container)?;
    let id = running_attempt(&v, &c)?;
    let rt = agent.rt.clone();
    let cfg = ExecConfig {
        args: e.command.clone(),
        tty: e.tty,
        ..Default::default()
    };
    let mut p = {
        let id = id.clone();
        tokio::task::spawn_blocking(move || rt.exec(&id, &cfg))
            .await
            .map_err(|err| error(ErrorCode::Internal, err.to_string()))?
            .map_err(|err| error(ErrorCode::BadRequest, err.to_string()))?
    };
    // Output readers: blocking threads feeding one channel.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<StreamFrame>(16);
    let mut input: Option<std::fs::File> = None;
    let mut tty_ctl: Option<std::fs::File> = None;
    let mut readers = Vec::new();
    if let Some(t) = p.tty.take() {
        let r = t
            .try_clone()
            .map_err(|err| error(ErrorCode::Internal, err.to_string()))?;
        tty_ctl = t.try_clone().ok();
        readers.push(pump(r, false, out_tx.clone()));
        if e.stdin {
            input = Some(t);
        }
    } else {
        if let Some(o) = p.stdout.take() {
            readers.push(pump(o, false, out_tx.clone()));
        }
        if let Some(er) = p.stderr.take() {
            readers.push(pump(er, true, out_tx.clone()));
        }
        if e.stdin {
            input = p.stdin.take();
        } else {
            drop(p.stdin.take());
        }
    }
    drop(out_tx);
    let pid = p.pid;
    let waiter = tokio::task::spawn_blocking(move || p.wait());
    // Input: stdin frames and resizes from the client.
    let input_task = tokio::spawn(forward_input(recv, input, tty_ctl));
    while let Some(frame) = out_rx.recv().await {
        if write_frame(send, &frame).await.is_err() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            break;
        }
    }
    let code = waiter
        .await
        .map_err(|err| error(ErrorCode::Internal, err.to_string()))?
        .map_err(|err| error(ErrorCode::Internal, err.to_string()))?;
    input_task.abort();
    write_frame(send, &StreamFrame::Exit(code))
        .await
        .map_err(|err| error(ErrorCode::Internal, err.to_string()))?;
    Ok(())
}

/// `attach`: a session with a container's own process through its monitor, for a container
/// with `stdin` or `tty`. One with neither has no input to give: its output is its log
/// followed from the end, which is what the kubelet's attach shows of it.
pub(super) async fn attach(
    agent: &Agent,
    a: AttachRequest,
    send: &mut quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), StreamFrame> {
    let v = view(agent, &a.namespace, &a.pod)?;
    let c = pick_container(&v, &a.pod, &a.container)?;
    let (has_stdin, has_tty) = (v.stdin.contains(&c), v.tty.contains(&c));
    if a.stdin && !has_stdin {
        return Err(error(
            ErrorCode::BadRequest,
            format!("container {c} in pod {} was not started with stdin: true, so it has no input to attach to: attach without -i, or set stdin: true in its spec", a.pod),
        ));
    }
    if a.tty && !has_tty {
        return Err(error(
            ErrorCode::BadRequest,
            format!("Unable to use a TTY - container {c} did not allocate one (tty: true)"),
        ));
    }
    if !has_stdin && !has_tty {
        let follow = LogsRequest {
            namespace: a.namespace,
            pod: a.pod,
            container: Some(c),
            follow: true,
            tail: Some(0),
            previous: false,
            timestamps: false,
            since: None,
            limit_bytes: None,
        };
        return logs(agent, follow, send).await;
    }
    let id = running_attempt(&v, &c)?;
    let rt = agent.rt.clone();
    let stdin = a.stdin;
    let session = tokio::task::spawn_blocking(move || rt.attach(&id, stdin))
        .await
        .map_err(|e| error(ErrorCode::Internal, e.to_string()))?
        .map_err(|e| error(ErrorCode::BadRequest, e.to_string()))?;
    let internal = |e: std::io::Error| error(ErrorCode::Internal, e.to_string());
    session.sock.set_nonblocking(true).map_err(internal)?;
    let sock = tokio::net::UnixStream::from_std(session.sock).map_err(internal)?;
    let (mut rd, mut wr) = sock.into_split();
    // The client's input and resizes, to the monitor; its end ends only the input.
    let input = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok(Some(f)) = read_frame::<StreamFrame, _>(&mut recv, MAX_FRAME_LEN).await {
            let mut bytes = Vec::new();
            match f {
                StreamFrame::Stdin(b) => {
                    for chunk in b.chunks(skiff_runtime::attach::MAX_PAYLOAD) {
                        Frame::Stdin(chunk.to_vec()).encode(&mut bytes);
                    }
                }
                StreamFrame::CloseStdin => Frame::CloseStdin.encode(&mut bytes),
                StreamFrame::Resize { cols, rows } => {
                    Frame::Resize { cols, rows }.encode(&mut bytes)
                }
                _ => continue,
            }
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        // Keep the session's write half (dropping it would end the session) until the
        // output side is done.
        std::future::pending::<()>().await;
    });
    let r = attach_output(&mut rd, send).await;
    input.abort();
    r
}

/// Relays a monitor's frames to the client until the exit, the monitor's end, or the
/// client's.
async fn attach_output(
    rd: &mut tokio::net::unix::OwnedReadHalf,
    send: &mut quinn::SendStream,
) -> Result<(), StreamFrame> {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        while let Some((f, used)) =
            Frame::decode(&raw).map_err(|e| error(ErrorCode::Internal, e))?
        {
            raw.drain(..used);
            let (out, last) = match f {
                Frame::Stdout(b) => (StreamFrame::Stdout(b), false),
                Frame::Stderr(b) => (StreamFrame::Stderr(b), false),
                Frame::Exit(code) => (StreamFrame::Exit(code), true),
                _ => continue,
            };
            if write_frame(send, &out).await.is_err() || last {
                return Ok(());
            }
        }
        let n = tokio::select! {
            n = rd.read(&mut buf) => n.map_err(|e| error(ErrorCode::Internal, e.to_string()))?,
            _ = send.stopped() => return Ok(()),
        };
        if n == 0 {
            // The monitor ended without an exit frame (it was killed).
            return Err(error(
                ErrorCode::Internal,
                "the container's monitor went away",
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// A thread copying `f` (an exec'd process's stdout, stderr or terminal) into frames.
fn pump(
    mut f: std::fs::File,
    stderr: bool,
    tx: tokio::sync::mpsc::Sender<StreamFrame>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let b = buf[..n].to_vec();
                    let frame = if stderr {
                        StreamFrame::Stderr(b)
                    } else {
                        StreamFrame::Stdout(b)
                    };
                    if tx.blocking_send(frame).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// An exec's input from the client: stdin frames into `input`, its close (as ^D on a
/// terminal) and terminal resizes.
async fn forward_input(
    mut recv: quinn::RecvStream,
    mut input: Option<std::fs::File>,
    tty_ctl: Option<std::fs::File>,
) {
    while let Ok(Some(f)) = read_frame::<StreamFrame, _>(&mut recv, MAX_FRAME_LEN).await {
        match f {
            StreamFrame::Stdin(b) => {
                if let Some(i) = input.as_mut() {
                    let mut file = i.try_clone().ok();
                    let ok = tokio::task::spawn_blocking(move || {
                        file.as_mut().is_some_and(|f| f.write_all(&b).is_ok())
                    })
                    .await
                    .unwrap_or(false);
                    if !ok {
                        input = None;
                    }
                }
            }
            StreamFrame::CloseStdin => {
                // With a terminal, the end of input is ^D, as a terminal would send.
                if let Some(t) = &tty_ctl {
                    let mut t = t;
                    if input.is_some() {
                        let _ = t.write_all(&[4]);
                    }
                }
                input = None;
            }
            StreamFrame::Resize { cols, rows } => {
                if let Some(t) = &tty_ctl {
                    let _ = skiff_runtime::set_winsize(t, cols, rows);
                }
            }
            _ => {}
        }
    }
}
