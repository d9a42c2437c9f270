//! `pods/portforward` for `kubectl port-forward`: SPDY/3.1 ([`super::spdy`]) in WebSocket
//! binary messages (subprotocol `SPDY/3.1+portforward.k8s.io`, what kubectl dials first
//! since 1.31) or on a connection upgraded to `SPDY/3.1` (its fallback). Each connection
//! kubectl forwards is a pair of streams it opens, `error` then `data`, with one
//! `requestID` and the remote `port`; the data stream becomes a `PortForwardRequest` stream
//! to the pod's node ([`crate::server::open_to_node`], admins only, as exec), whose agent
//! connects to the port from the pod's network namespace. What goes wrong for a connection
//! is written on its error stream, which kubectl prints.

use super::route::Target;
use super::spdy::{Frame, Parser, Writer};
use super::{failure, Body};
use crate::pki::Identity;
use crate::requests::Api;
use crate::store::Store;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use skiff_api::wire::{
    ApiError, ErrorCode, PortForwardRequest, Request as ApiRequest, StreamFrame, MAX_FRAME_LEN,
};
use skiff_transport::frames::{read_frame, write_frame};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// The WebSocket subprotocol of SPDY tunnelled in WebSocket.
const TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol of a plain SPDY upgrade.
const PROTOCOL: &str = "portforward.k8s.io";
/// Connections forwarded at once on one session.
const MAX_CONNECTIONS: usize = 128;
/// The most data sent in one SPDY frame.
const CHUNK: usize = 32 << 10;
/// RST_STREAM statuses.
const PROTOCOL_ERROR: u32 = 1;
const REFUSED_STREAM: u32 = 3;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, msg)
}

/// `GET|POST pods/{name}/portforward` with a WebSocket or SPDY upgrade.
pub(crate) async fn portforward<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let name = t.name.clone().unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let offered = |h: &str, want: &str| header(h).split(',').any(|p| p.trim() == want);
    let websocket = header("upgrade").eq_ignore_ascii_case("websocket");
    let spdy = header("upgrade").eq_ignore_ascii_case("SPDY/3.1");
    let key = header("sec-websocket-key");
    let refused = if websocket && !offered("sec-websocket-protocol", TUNNEL) {
        Some(bad(format!("offer the {TUNNEL} WebSocket subprotocol")))
    } else if websocket && key.is_empty() {
        Some(bad("a WebSocket upgrade needs Sec-WebSocket-Key"))
    } else if spdy && !offered("x-stream-protocol-version", PROTOCOL) {
        Some(bad(format!("offer X-Stream-Protocol-Version: {PROTOCOL}")))
    } else if !websocket && !spdy {
        Some(bad(format!(
            "port-forward is served over WebSocket ({TUNNEL}) or an upgrade to SPDY/3.1"
        )))
    } else if !matches!(id, Identity::Admin(_)) {
        Some(ApiError::new(
            ErrorCode::Forbidden,
            format!("{} may not port-forward to pods", id.name()),
        ))
    } else {
        None
    };
    if let Some(e) = refused {
        return failure(&e, Some((t.kind, &name)));
    }
    let upgrade = hyper::upgrade::on(&mut req);
    let (api, id, namespace) = (
        api.clone(),
        id.clone(),
        t.namespace.clone().unwrap_or_default(),
    );
    let pod = name.clone();
    tokio::spawn(async move {
        let up = match upgrade.await {
            Ok(up) => hyper_util::rt::TokioIo::new(up),
            Err(e) => return tracing::debug!(error = %e, "port-forward upgrade failed"),
        };
        let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(64);
        let forwarding = session(api, id, namespace, pod, in_rx, out_tx);
        if websocket {
            // A message holds at most one SPDY frame's worth (kubectl's are a few KiB).
            let limit = Some(super::spdy::MAX_FRAME + (64 << 10));
            let config = WebSocketConfig::default()
                .max_message_size(limit)
                .max_frame_size(limit);
            let ws = WebSocketStream::from_raw_socket(up, Role::Server, Some(config)).await;
            tokio::join!(over_websocket(ws, in_tx, out_rx), forwarding);
        } else {
            tokio::join!(over_connection(up, in_tx, out_rx), forwarding);
        }
    });
    let b = Response::builder()
        .status(101)
        .header("connection", "Upgrade");
    let b = if websocket {
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        b.header("upgrade", "websocket")
            .header("sec-websocket-accept", accept)
            .header("sec-websocket-protocol", TUNNEL)
    } else {
        b.header("upgrade", "SPDY/3.1")
            .header("x-stream-protocol-version", PROTOCOL)
    };
    b.body(Empty::new().boxed_unsync())
        .expect("a valid response")
}

/// SPDY's bytes in WebSocket binary messages, both ways.
async fn over_websocket<T>(
    ws: WebSocketStream<T>,
    input: mpsc::Sender<Vec<u8>>,
    mut output: mpsc::Receiver<Vec<u8>>,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let read = async move {
        while let Some(Ok(m)) = stream.next().await {
            let b = match m {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            if input.send(b.to_vec()).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some(b) = output.recv().await {
            if sink.send(Message::Binary(b.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    tokio::join!(read, write);
}

/// SPDY's bytes on the upgraded connection itself.
async fn over_connection<T>(
    io: T,
    input: mpsc::Sender<Vec<u8>>,
    mut output: mpsc::Receiver<Vec<u8>>,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || input.send(buf[..n].to_vec()).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some(b) = output.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(read, write);
}

/// A connection being forwarded: its input, its task, and its error stream.
struct Forwarded {
    input: mpsc::Sender<Option<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
    error_stream: Option<u32>,
}

/// The SPDY session: streams opened, replied to, paired and forwarded, pings answered.
async fn session<S: Store>(
    api: Arc<Api<S>>,
    id: Identity,
    namespace: String,
    pod: String,
    mut input: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Vec<u8>>,
) {
    let mut parser = Parser::default();
    let mut writer = Writer::default();
    let mut error_streams: HashMap<String, u32> = HashMap::new();
    let mut open: HashMap<u32, Forwarded> = HashMap::new();
    'session: while let Some(bytes) = input.recv().await {
        let frames = match parser.feed(&bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "port-forward: bad SPDY from the client");
                let _ = out.send(Writer::goaway(0)).await;
                break;
            }
        };
        for f in frames {
            let sent = match f {
                Frame::SynStream {
                    id: sid, headers, ..
                } => {
                    let h = |k: &str| {
                        headers
                            .iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.as_str())
                    };
                    let request = h("requestid").unwrap_or_default().to_string();
                    open.retain(|_, c| !c.task.is_finished());
                    match h("streamtype") {
                        Some("error") => {
                            error_streams.insert(request, sid);
                            out.send(writer.syn_reply(sid)).await
                        }
                        Some("data") if open.len() < MAX_CONNECTIONS => {
                            let port = h("port").and_then(|p| p.parse::<u16>().ok());
                            let (tx, rx) = mpsc::channel(16);
                            let error_stream = error_streams.remove(&request);
                            let conn = Connection {
                                api: api.clone(),
                                id: id.clone(),
                                req: PortForwardRequest {
                                    namespace: namespace.clone(),
                                    pod: pod.clone(),
                                    port: port.unwrap_or(0),
                                },
                                data_stream: sid,
                                error_stream,
                                out: out.clone(),
                            };
                            let r = out.send(writer.syn_reply(sid)).await;
                            open.insert(
                                sid,
                                Forwarded {
                                    input: tx,
                                    task: tokio::spawn(conn.run(rx)),
                                    error_stream,
                                },
                            );
                            r
                        }
                        Some("data") => out.send(Writer::reset(sid, REFUSED_STREAM)).await,
                        _ => out.send(Writer::reset(sid, PROTOCOL_ERROR)).await,
                    }
                }
                Frame::Data { id: sid, fin, data } => {
                    if let Some(c) = open.get(&sid) {
                        if !data.is_empty() {
                            let _ = c.input.send(Some(data)).await;
                        }
                        if fin {
                            let _ = c.input.send(None).await;
                        }
                    }
                    Ok(())
                }
                // kubectl resets a data stream when its side is done: the connection goes,
                // and its error stream ends so kubectl stops waiting on it.
                Frame::Reset { id: sid } => match open.remove(&sid) {
                    Some(c) if !c.task.is_finished() => {
                        c.task.abort();
                        match c.error_stream {
                            Some(e) => out.send(Writer::data(e, true, b"")).await,
                            None => Ok(()),
                        }
                    }
                    _ => Ok(()),
                },
                Frame::Ping { id: ping } => out.send(Writer::ping(ping)).await,
                Frame::GoAway => break 'session,
                Frame::Other => Ok(()),
            };
            if sent.is_err() {
                break 'session;
            }
        }
    }
    for c in open.into_values() {
        c.task.abort();
    }
}

/// One forwarded connection.
struct Connection<S: Store> {
    api: Arc<Api<S>>,
    id: Identity,
    req: PortForwardRequest,
    data_stream: u32,
    error_stream: Option<u32>,
    out: mpsc::Sender<Vec<u8>>,
}

impl<S: Store> Connection<S> {
    /// Relays the client's bytes (`None`: its end) to the node and the port's back, then ends
    /// both streams, with what went wrong on the error stream.
    async fn run(self, input: mpsc::Receiver<Option<Vec<u8>>>) {
        let result = self.relay(input).await;
        if let (Err(msg), Some(e)) = (&result, self.error_stream) {
            let _ = self.out.send(Writer::data(e, false, msg.as_bytes())).await;
        }
        let _ = self
            .out
            .send(Writer::data(self.data_stream, true, b""))
            .await;
        if let Some(e) = self.error_stream {
            let _ = self.out.send(Writer::data(e, true, b"")).await;
        }
    }

    async fn relay(&self, mut input: mpsc::Receiver<Option<Vec<u8>>>) -> Result<(), String> {
        if self.req.port == 0 {
            return Err("the data stream names no port (1-65535)".into());
        }
        let req = ApiRequest::PortForward(self.req.clone());
        let (mut nsend, mut nrecv) = crate::server::open_to_node(&self.api, &self.id, &req)
            .await
            .map_err(|e| e.message)?;
        let up = async move {
            while let Some(chunk) = input.recv().await {
                let f = match chunk {
                    Some(b) => StreamFrame::Stdin(b),
                    None => StreamFrame::CloseStdin,
                };
                let end = f == StreamFrame::CloseStdin;
                if write_frame(&mut nsend, &f).await.is_err() || end {
                    break;
                }
            }
            let _ = nsend.finish();
            std::future::pending::<()>().await;
        };
        let down = async {
            loop {
                match read_frame::<StreamFrame, _>(&mut nrecv, MAX_FRAME_LEN).await {
                    Ok(Some(StreamFrame::Stdout(b))) => {
                        for chunk in b.chunks(CHUNK) {
                            let f = Writer::data(self.data_stream, false, chunk);
                            if self.out.send(f).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Ok(Some(StreamFrame::Error(e))) => return Err(e.message),
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(format!("the node's stream broke: {e}")),
                }
            }
        };
        tokio::select! {
            r = down => r,
            _ = up => Ok(()),
        }
    }
}
