//! Logs, exec and attach: one stream to the coordinator, which relays it to the pod's node.

use anyhow::{anyhow, bail};
use skiff_api::wire::{
    AttachRequest, ExecRequest, LogsRequest, Request, StreamFrame, MAX_FRAME_LEN,
};
use skiff_transport::frames::{read_frame, write_frame};
use skiff_transport::{Client, ClientError};
use std::io::{IsTerminal, Write};
use tokio::io::AsyncReadExt;

fn server_error(e: skiff_api::wire::ApiError) -> anyhow::Error {
    anyhow::Error::new(ClientError::Api(e))
}

async fn open(c: &Client, req: &Request) -> anyhow::Result<(quinn::SendStream, quinn::RecvStream)> {
    let (mut send, recv) = c
        .connection()
        .open_bi()
        .await
        .map_err(|e| anyhow!("opening a stream: {e}"))?;
    write_frame(&mut send, req).await?;
    Ok((send, recv))
}

/// Prints a container's log (and follows it with `-f`).
pub async fn logs(c: &Client, req: LogsRequest) -> anyhow::Result<()> {
    let (mut send, mut recv) = open(c, &Request::Logs(req)).await?;
    let _ = send.finish();
    let mut out = std::io::stdout().lock();
    while let Some(f) = read_frame::<StreamFrame, _>(&mut recv, MAX_FRAME_LEN).await? {
        match f {
            StreamFrame::Stdout(b) => {
                out.write_all(&b)?;
                out.flush()?;
            }
            StreamFrame::Error(e) => return Err(server_error(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Puts the terminal in raw mode and restores it when dropped.
struct RawTerminal(Option<rustix::termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        let stdin = rustix::stdio::stdin();
        match rustix::termios::tcgetattr(stdin) {
            Ok(old) => {
                let mut raw = old.clone();
                raw.make_raw();
                let _ = rustix::termios::tcsetattr(
                    stdin,
                    rustix::termios::OptionalActions::Flush,
                    &raw,
                );
                RawTerminal(Some(old))
            }
            Err(_) => RawTerminal(None),
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                rustix::stdio::stdin(),
                rustix::termios::OptionalActions::Flush,
                old,
            );
        }
    }
}

fn window_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    Some((ws.ws_col, ws.ws_row))
}

/// Whether a terminal was asked for and this side has one (else says why not).
fn local_tty(asked: bool) -> bool {
    let tty = asked && std::io::stdin().is_terminal();
    if asked && !tty {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
    }
    tty
}

/// Runs a command in a container and returns its exit code.
pub async fn exec(c: &Client, req: ExecRequest) -> anyhow::Result<i32> {
    let tty = local_tty(req.tty);
    let want_stdin = req.stdin;
    let req = Request::Exec(ExecRequest { tty, ..req });
    session(c, req, want_stdin, tty, false).await
}

/// Attaches to a container's process; its exit code when it ends (0 when the session ends
/// first, or for a container followed by its log).
pub async fn attach(c: &Client, req: AttachRequest) -> anyhow::Result<i32> {
    let tty = local_tty(req.tty);
    let want_stdin = req.stdin;
    let req = Request::Attach(AttachRequest { tty, ..req });
    session(c, req, want_stdin, tty, true).await
}

/// One exec or attach stream: input (and resizes) up, output down, to the exit code.
async fn session(
    c: &Client,
    req: Request,
    want_stdin: bool,
    tty: bool,
    may_end_without_exit: bool,
) -> anyhow::Result<i32> {
    let (mut send, mut recv) = open(c, &req).await?;
    let _raw = tty.then(RawTerminal::enter);
    if tty {
        if let Some((cols, rows)) = window_size() {
            write_frame(&mut send, &StreamFrame::Resize { cols, rows }).await?;
        }
    }
    // Input: stdin chunks (and terminal size changes), then CloseStdin.
    let input = async move {
        if want_stdin {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 16 << 10];
            let mut winch =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
            loop {
                tokio::select! {
                    n = stdin.read(&mut buf) => match n {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if write_frame(&mut send, &StreamFrame::Stdin(buf[..n].to_vec())).await.is_err() {
                                return;
                            }
                        }
                    },
                    Some(()) = async { match winch.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                        if let Some((cols, rows)) = window_size() {
                            let _ = write_frame(&mut send, &StreamFrame::Resize { cols, rows }).await;
                        }
                    }
                }
            }
        }
        let _ = write_frame(&mut send, &StreamFrame::CloseStdin).await;
        let _ = send.finish();
    };
    let input = tokio::spawn(input);
    let output = async {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        loop {
            match read_frame::<StreamFrame, _>(&mut recv, MAX_FRAME_LEN).await? {
                Some(StreamFrame::Stdout(b)) => {
                    out.write_all(&b)?;
                    out.flush()?;
                }
                Some(StreamFrame::Stderr(b)) => {
                    err.write_all(&b)?;
                    err.flush()?;
                }
                Some(StreamFrame::Exit(code)) => return Ok(code),
                Some(StreamFrame::Error(e)) => return Err(server_error(e)),
                Some(_) => {}
                None if may_end_without_exit => return Ok(0),
                None => bail!("the stream ended before the command's exit code arrived"),
            }
        }
    };
    let r = output.await;
    input.abort();
    r
}
