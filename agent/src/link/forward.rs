//! `kubectl port-forward`: a TCP connection to a port on a pod's `localhost`, made from the
//! pod's own network namespace (as the kubelet makes it, so a server listening only on
//! 127.0.0.1 is reached), relayed on the stream the coordinator opened.

use super::serve::{error, view};
use crate::state::Agent;
use skiff_api::wire::{ErrorCode, PortForwardRequest, StreamFrame, MAX_FRAME_LEN};
use skiff_transport::frames::{read_frame, write_frame};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connects to `port` on `localhost` in the network namespace at `netns` (the node's own with
/// host networking): IPv4 first, then IPv6, as the kubelet.
fn connect(netns: Option<&Path>, port: u16) -> io::Result<TcpStream> {
    let dial = move || -> io::Result<TcpStream> {
        let wait = Duration::from_secs(10);
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match TcpStream::connect_timeout(&v4, wait) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                TcpStream::connect_timeout(&SocketAddr::from((Ipv6Addr::LOCALHOST, port)), wait)
                    .map_err(|_| e)
            }
            r => r,
        }
    };
    let Some(ns) = netns else {
        return dial();
    };
    // A thread of its own enters the pod's namespace (a network namespace is per thread)
    // and ends there; the socket stays in the namespace it was made in.
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&ns)?;
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| io::Error::other(format!("entering the pod's network namespace: {e}")))?;
        dial()
    })
    .join()
    .map_err(|_| io::Error::other("the connecting thread panicked"))?
}

/// Serves one forwarded connection: the client's bytes to the port, the port's to the client,
/// until the port's side ends (or the client goes away).
pub(super) async fn port_forward(
    agent: &Agent,
    p: PortForwardRequest,
    send: &mut quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), StreamFrame> {
    let v = view(agent, &p.namespace, &p.pod)?;
    let port = p.port;
    let netns = v.netns.clone();
    let tcp = tokio::task::spawn_blocking(move || connect(netns.as_deref(), port))
        .await
        .map_err(|e| error(ErrorCode::Internal, e.to_string()))?
        .map_err(|e| {
            error(
                ErrorCode::BadRequest,
                format!(
                    "error forwarding port {port} to pod {}: dial tcp 127.0.0.1:{port}: {e}",
                    p.pod
                ),
            )
        })?;
    let internal = |e: io::Error| error(ErrorCode::Internal, e.to_string());
    tcp.set_nonblocking(true).map_err(internal)?;
    let (mut rd, mut wr) = tokio::net::TcpStream::from_std(tcp)
        .map_err(internal)?
        .into_split();
    let up = tokio::spawn(async move {
        while let Ok(Some(f)) = read_frame::<StreamFrame, _>(&mut recv, MAX_FRAME_LEN).await {
            let written = match f {
                StreamFrame::Stdin(b) => wr.write_all(&b).await,
                StreamFrame::CloseStdin => break,
                _ => Ok(()),
            };
            if written.is_err() {
                break;
            }
        }
        // The client's end: the port sees the end of its input, and answers on.
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await;
    });
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let n = tokio::select! {
            n = rd.read(&mut buf) => n,
            _ = send.stopped() => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if write_frame(send, &StreamFrame::Stdout(buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    up.abort();
    Ok(())
}
