//! `pods/exec` over WebSocket with Kubernetes' channel protocol (`v5.channel.k8s.io`, and
//! `v4.channel.k8s.io`): every binary message starts with its channel — 0 stdin, 1
//! stdout, 2 stderr, 3 the final `Status` (exit code), 4 terminal size, and in v5 255 to
//! close a channel (stdin). The exec itself is the QUIC path's: an `ExecRequest` sent to the
//! pod's node, whose frames are relayed both ways. `pods/attach` is served on the same
//! relay with an `AttachRequest`: the container's own process, whose standard input and
//! terminal its monitor keeps when the container has `stdin`/`tty` (the node follows the
//! log from its end for a container with neither). As the kubelet, an attach ends with a
//! `Success` status whatever the process's exit code.

use super::route::{flag, param, Target};
use super::{failure, Body};
use crate::pki::Identity;
use crate::requests::Api;
use crate::store::Store;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use skiff_api::wire::{
    ApiError, AttachRequest, ErrorCode, ExecRequest, Request as ApiRequest, StreamFrame,
};
use skiff_transport::frames::{read_frame, write_frame};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Message, Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// The subprotocols served, preferred first.
const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, msg)
}

/// Client messages carry input a chunk at a time (kubectl's are 32 KiB at most): a message
/// over 1 MiB is refused before it is buffered (tungstenite's default allows 64 MiB).
pub(super) fn ws_config() -> WebSocketConfig {
    let limit = Some(1 << 20);
    WebSocketConfig::default()
        .max_message_size(limit)
        .max_frame_size(limit)
}

/// The subprotocol to speak: the first of ours the client offers.
pub fn choose_protocol(offered: &str) -> Option<&'static str> {
    let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
    PROTOCOLS.into_iter().find(|p| offered.contains(p))
}

/// The `Status` that ends an exec on channel 3: success, or the exit code as Kubernetes
/// reports it (`NonZeroExitCode`, the code in `details.causes`).
pub fn exit_status(code: i32) -> serde_json::Value {
    if code == 0 {
        return serde_json::json!({"metadata": {}, "status": "Success"});
    }
    serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// What one client message asks of the exec.
pub fn client_frame(v5: bool, data: &[u8]) -> Option<StreamFrame> {
    let (&channel, rest) = data.split_first()?;
    match channel {
        STDIN => Some(StreamFrame::Stdin(rest.to_vec())),
        RESIZE => {
            let v: serde_json::Value = serde_json::from_slice(rest).ok()?;
            let dim = |k: &str| {
                v.get(k)
                    .and_then(serde_json::Value::as_u64)
                    .map(|n| n.min(u16::MAX.into()) as u16)
            };
            Some(StreamFrame::Resize {
                cols: dim("Width")?,
                rows: dim("Height")?,
            })
        }
        CLOSE if v5 && rest.first() == Some(&STDIN) => Some(StreamFrame::CloseStdin),
        _ => None,
    }
}

/// `GET|POST pods/{name}/exec` with a WebSocket upgrade.
pub(crate) async fn exec<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    req: Request<Incoming>,
) -> Response<Body> {
    serve(api, id, t, exec_request(t, q), req).await
}

/// `GET|POST pods/{name}/attach` with a WebSocket upgrade: the container's process, its
/// output from now.
pub(crate) async fn attach<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    q: &[(String, String)],
    req: Request<Incoming>,
) -> Response<Body> {
    serve(api, id, t, attach_request(t, q), req).await
}

/// The node's stream `node_req` over WebSocket, or the Status of why not.
async fn serve<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    t: &Target,
    node_req: Result<ApiRequest, ApiError>,
    req: Request<Incoming>,
) -> Response<Body> {
    let r = match node_req {
        Ok(node_req) => start(api, id, node_req, req).await,
        Err(e) => Err(e),
    };
    r.unwrap_or_else(|e| failure(&e, Some((t.kind, t.name.as_deref().unwrap_or("")))))
}

fn exec_request(t: &Target, q: &[(String, String)]) -> Result<ApiRequest, ApiError> {
    let command: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Err(bad("you must specify at least 1 command"));
    }
    Ok(ApiRequest::Exec(ExecRequest {
        namespace: t.namespace.clone().unwrap_or_default(),
        pod: t.name.clone().unwrap_or_default(),
        container: param(q, "container").map(str::to_string),
        command,
        stdin: flag(q, "stdin"),
        tty: flag(q, "tty"),
    }))
}

/// An attach: the container's process, with input if `stdin`.
pub fn attach_request(t: &Target, q: &[(String, String)]) -> Result<ApiRequest, ApiError> {
    Ok(ApiRequest::Attach(AttachRequest {
        namespace: t.namespace.clone().unwrap_or_default(),
        pod: t.name.clone().unwrap_or_default(),
        container: param(q, "container").map(str::to_string),
        stdin: flag(q, "stdin"),
        tty: flag(q, "tty"),
    }))
}

/// Upgrades to WebSocket and relays `node_req`'s stream; the client's stdin and resizes go
/// to the node for an exec, and for an attach with `stdin` or a terminal.
async fn start<S: Store>(
    api: &Arc<Api<S>>,
    id: &Identity,
    node_req: ApiRequest,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (input, attach) = match &node_req {
        ApiRequest::Exec(_) => (true, false),
        ApiRequest::Attach(a) => (a.stdin || a.tty, true),
        _ => (false, false),
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    if !header("upgrade").eq_ignore_ascii_case("websocket") {
        return Err(bad("exec and attach are served over WebSocket (v5.channel.k8s.io or v4.channel.k8s.io); SPDY is not supported"));
    }
    let protocol = choose_protocol(&header("sec-websocket-protocol")).ok_or_else(|| {
        bad("offer the v5.channel.k8s.io or v4.channel.k8s.io WebSocket subprotocol")
    })?;
    let key = header("sec-websocket-key");
    if key.is_empty() {
        return Err(bad("a WebSocket upgrade needs Sec-WebSocket-Key"));
    }
    // The node first: what fails before the upgrade is an ordinary error answer.
    let (mut nsend, nrecv) = crate::server::open_to_node(api, id, &node_req).await?;
    if !input {
        let _ = nsend.finish();
    }
    let upgrade = hyper::upgrade::on(&mut req);
    let v5 = protocol == PROTOCOLS[0];
    tokio::spawn(async move {
        match upgrade.await {
            Ok(up) => {
                let io = hyper_util::rt::TokioIo::new(up);
                let ws =
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
                relay(ws, v5, input.then_some(nsend), nrecv, attach).await;
            }
            Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(Response::builder()
        .status(101)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", protocol)
        .body(Empty::new().boxed_unsync())
        .expect("a valid response"))
}

async fn relay<T>(
    ws: WebSocketStream<T>,
    v5: bool,
    mut nsend: Option<quinn::SendStream>,
    mut nrecv: quinn::RecvStream,
    attach: bool,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut out, mut inp) = ws.split();
    let up = async {
        while let Some(Ok(m)) = inp.next().await {
            let data = match m {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            let Some(send) = nsend.as_mut() else { continue };
            if let Some(f) = client_frame(v5, &data) {
                if write_frame(send, &f).await.is_err() {
                    break;
                }
            }
        }
        if let Some(send) = nsend.as_mut() {
            let _ = write_frame(send, &StreamFrame::CloseStdin).await;
            let _ = send.finish();
        }
    };
    let down = async {
        loop {
            let f = read_frame::<StreamFrame, _>(&mut nrecv, skiff_api::wire::MAX_FRAME_LEN).await;
            let (channel, data) = match f {
                Ok(Some(StreamFrame::Stdout(b))) => (STDOUT, b),
                Ok(Some(StreamFrame::Stderr(b))) => (STDERR, b),
                Ok(Some(StreamFrame::Exit(code))) => {
                    let code = if attach { 0 } else { code };
                    (ERROR, exit_status(code).to_string().into_bytes())
                }
                Ok(Some(StreamFrame::Error(e))) => {
                    let (_, s) = super::render::status(&e, None);
                    (ERROR, s.to_string().into_bytes())
                }
                _ => break,
            };
            let done = channel == ERROR;
            let mut msg = Vec::with_capacity(data.len() + 1);
            msg.push(channel);
            msg.extend_from_slice(&data);
            if out.send(Message::Binary(msg.into())).await.is_err() || done {
                break;
            }
        }
        // A normal closure (1000): client-go reads the error channel to its end, and a
        // close without a status (1005) is an error to it.
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = out.send(Message::Close(Some(normal))).await;
    };
    tokio::pin!(up);
    tokio::pin!(down);
    tokio::select! {
        // Ended (status sent, close frame sent): read on until the client's close frame, a
        // moment at most. A socket closed with the client's input unread is reset, and a
        // reset can throw away the status the client has not read yet.
        _ = &mut down => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), &mut up).await;
        }
        // The client's input ended (stdin closed): its output goes on until the exit.
        _ = &mut up => down.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_chosen_by_our_preference() {
        assert_eq!(
            choose_protocol("v4.channel.k8s.io, v5.channel.k8s.io"),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            choose_protocol("v4.channel.k8s.io"),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(choose_protocol("channel.k8s.io"), None);
    }

    #[test]
    fn client_messages() {
        assert_eq!(
            client_frame(true, b"\0ls\n"),
            Some(StreamFrame::Stdin(b"ls\n".to_vec()))
        );
        assert_eq!(
            client_frame(true, b"\x04{\"Width\":120,\"Height\":40}"),
            Some(StreamFrame::Resize {
                cols: 120,
                rows: 40
            })
        );
        assert_eq!(client_frame(true, &[255, 0]), Some(StreamFrame::CloseStdin));
        assert_eq!(
            client_frame(false, &[255, 0]),
            None,
            "v4 has no close channel"
        );
        assert_eq!(client_frame(true, b"\x04{\"Width\":\"x\"}"), None);
        assert_eq!(client_frame(true, b""), None);
    }

    #[test]
    fn an_attach_names_its_container_and_its_input() {
        let t = Target {
            kind: skiff_api::Kind::Pod,
            namespace: Some("default".into()),
            name: Some("web".into()),
            subresource: Some("attach".into()),
        };
        let q = |s: &str| crate::http::route::query(Some(s));
        match attach_request(&t, &q("container=app&stdout=true")).unwrap() {
            ApiRequest::Attach(a) => {
                assert_eq!(a.container.as_deref(), Some("app"));
                assert!(!a.stdin && !a.tty);
            }
            other => panic!("{other:?}"),
        }
        match attach_request(&t, &q("stdin=true&tty=true")).unwrap() {
            ApiRequest::Attach(a) => assert!(a.stdin && a.tty && a.container.is_none()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exit_codes_as_kubernetes_reports_them() {
        assert_eq!(exit_status(0)["status"], "Success");
        let s = exit_status(3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    }
}
