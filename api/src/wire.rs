//! The wire protocol between the CLI, agents and the coordinator.
//!
//! Each QUIC stream carries one request and its answer. A message is a frame: a `u32`
//! big-endian length, then the postcard encoding of the message. The length is checked
//! against [`MAX_FRAME_LEN`] before any buffer is allocated for the body. Objects travel
//! inside messages as their JSON text (postcard is not self-describing, and the object
//! model's optional fields need a self-describing format).

use crate::object::{Kind, ObjectKey};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// ALPN of the protocol: the version lives here, so a mismatched peer fails the handshake.
pub const ALPN: &[u8] = b"skiff/1";

/// The QUIC application close code of a connection whose client certificate the
/// coordinator refuses (expired, revoked, replaced): the close reason says why and how an
/// admin readmits the node.
pub const CREDENTIAL_REFUSED: u32 = 0x5c01;

/// The largest frame either side accepts (16 MiB).
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// The largest frame a peer without a client certificate may send: a join request (a
/// token, a node name and a CSR of a few hundred bytes) with room to spare.
pub const MAX_JOIN_FRAME_LEN: usize = 8 << 10;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Versions of the server and the protocol.
    Version,
    /// Who the server thinks the caller is.
    WhoAmI,
    /// One object.
    Get {
        /// Which.
        key: ObjectKey,
    },
    /// Objects of a kind, a page at a time.
    List {
        /// The kind.
        kind: Kind,
        /// A namespace, or all.
        namespace: Option<String>,
        /// A label selector in string form.
        selector: Option<String>,
        /// The most items wanted in this page (the server may send fewer).
        limit: Option<u32>,
        /// Where the previous page stopped (`continue` in Kubernetes).
        continue_token: Option<String>,
    },
    /// Create an object (JSON). `AlreadyExists` if it exists.
    Create {
        /// The object's JSON.
        object: String,
    },
    /// Replace an object (JSON). A `resourceVersion` in it is a precondition.
    Update {
        /// The object's JSON.
        object: String,
        /// Replace only `status` (agents and controllers).
        status: bool,
    },
    /// Create, or update the user-owned parts (labels, annotations, spec/data).
    Apply {
        /// The object's JSON.
        object: String,
    },
    /// Delete an object.
    Delete {
        /// Which.
        key: ObjectKey,
        /// Precondition: delete only this revision.
        resource_version: Option<u64>,
        /// Pods on a node end gracefully: this overrides the pod's
        /// `terminationGracePeriodSeconds` (0 with `force` removes the object at once).
        grace_period_seconds: Option<i64>,
        /// Remove the object without waiting for its node to confirm (`--force`).
        force: bool,
        /// What becomes of the objects it owns (`--cascade`).
        propagation: Propagation,
    },
    /// Evict a pod (`kubectl drain`, `skiff drain`): delete it unless that would take a
    /// PodDisruptionBudget below what it needs (then `TooManyRequests`: try again).
    Evict {
        /// The pod.
        key: ObjectKey,
        /// Its grace period, instead of its `terminationGracePeriodSeconds`.
        grace_period_seconds: Option<i64>,
    },
    /// Stream changes after `since` (a list's revision), or from now on.
    Watch {
        /// The kind.
        kind: Kind,
        /// A namespace, or all.
        namespace: Option<String>,
        /// A label selector in string form.
        selector: Option<String>,
        /// Events with a revision greater than this; none: from now on.
        since: Option<u64>,
    },
    /// Create a node join token.
    TokenCreate {
        /// Lifetime in seconds; none for a token that does not expire.
        ttl_seconds: Option<u64>,
        /// How many joins it allows; none for any number while it lives.
        uses: Option<u32>,
        /// A note for `token list`.
        description: String,
    },
    /// List join tokens.
    TokenList,
    /// Revoke a join token by id.
    TokenRevoke {
        /// The token id.
        id: String,
    },
    /// A new node presents a join token and a CSR; it gets a node certificate.
    Join {
        /// The join token (`SK10<ca-hash>::<id>.<secret>`).
        token: String,
        /// The node's name.
        node_name: String,
        /// PEM certificate signing request.
        csr_pem: String,
    },
    /// A node renews its certificate over its session (before it expires): a CSR for a
    /// new key; the answer is [`Response::Joined`].
    Renew {
        /// PEM certificate signing request.
        csr_pem: String,
    },
    /// A node renews its lease (kept in the coordinator's memory, never written to disk).
    Heartbeat,
    /// A node reports what its pods and itself use (kept in memory for `top`).
    ReportUsage {
        /// The node's figures.
        node: Usage,
        /// Each pod's figures.
        pods: Vec<PodUsage>,
    },
    /// Usage figures the nodes reported (`skiff top`).
    Top,
    /// A container's log, streamed: the answer is [`StreamFrame`]s (`Stdout` chunks) until
    /// the stream ends. Served by the pod's node through the coordinator.
    Logs(LogsRequest),
    /// A command in a running container: after this frame the client sends `Stdin`,
    /// `CloseStdin` and `Resize` frames and receives `Stdout`, `Stderr`, then `Exit`.
    Exec(ExecRequest),
    /// The standard input, output and terminal of a container's own process (`attach`):
    /// frames as for [`Request::Exec`]; `Exit` when the container's process ends.
    Attach(AttachRequest),
    /// A TCP connection to a port of a pod, from its own network namespace (`localhost`, as
    /// `kubectl port-forward`): the client sends `Stdin` (bytes for the port) and
    /// `CloseStdin` (its end of the connection), and receives `Stdout` until the port's
    /// end ends the stream, or an `Error`.
    PortForward(PortForwardRequest),
    /// A ServiceAccount token (`serviceaccounts/token`, Kubernetes' TokenRequest): signed
    /// for `audiences` (the API's when empty), living `expiration_seconds`, bound to a pod
    /// when one is named. A node may ask only for the accounts of pods bound to it.
    ServiceAccountToken {
        /// The account's namespace.
        namespace: String,
        /// The account.
        name: String,
        /// Who the token is for.
        audiences: Vec<String>,
        /// How long it lives (600 s at least).
        expiration_seconds: i64,
        /// The pod it is bound to: its name and uid.
        pod: Option<(String, String)>,
    },
}

/// Which log to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container (the pod's only one when absent).
    pub container: Option<String>,
    /// Keep streaming what the container writes.
    pub follow: bool,
    /// Only the last lines.
    pub tail: Option<u64>,
    /// The previous instance of the container (before its last restart).
    pub previous: bool,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Only lines written at or after this time (seconds since the epoch).
    pub since: Option<u64>,
    /// Stop after this many bytes of log.
    pub limit_bytes: Option<u64>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container (the pod's first when absent).
    pub container: Option<String>,
    /// Command and arguments.
    pub command: Vec<String>,
    /// Pass stdin.
    pub stdin: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

/// Which container to attach to, and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container (the pod's first when absent).
    pub container: Option<String>,
    /// Send input to the container's standard input (it must have `stdin: true`).
    pub stdin: bool,
    /// The client has a terminal (the container must have `tty: true`).
    pub tty: bool,
}

/// Which port of which pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForwardRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The TCP port, on the pod's `localhost`.
    pub port: u16,
}

/// Frames of a log or exec stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamFrame {
    /// Input for the process.
    Stdin(Vec<u8>),
    /// No more input.
    CloseStdin,
    /// The client's terminal changed size.
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Output (a log's lines, or the process's standard output or terminal).
    Stdout(Vec<u8>),
    /// The process's standard error.
    Stderr(Vec<u8>),
    /// The process ended with this code.
    Exit(i32),
    /// The request failed.
    Error(ApiError),
}

/// CPU and memory in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Thousandths of a core, averaged over the last report interval.
    pub cpu_millis: u64,
    /// Bytes (working set).
    pub memory_bytes: u64,
}

/// One pod's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodUsage {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Figures: the sum of its containers'.
    pub usage: Usage,
    /// Each running container's figures (`kubectl top pod --containers`).
    pub containers: Vec<ContainerUsage>,
}

/// One container's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUsage {
    /// The container's name in its pod.
    pub name: String,
    /// Figures.
    pub usage: Usage,
}

/// One node's report as `top` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUsageReport {
    /// The node.
    pub node: String,
    /// Its figures.
    pub usage: Usage,
    /// Its pods.
    pub pods: Vec<PodUsage>,
    /// Unix seconds of the report.
    pub at: u64,
    /// Milliseconds since the node's previous report: the window its CPU rates were
    /// measured over (0 for a node's first report).
    pub window_ms: u64,
}

impl Request {
    /// The first page of a list.
    pub fn list(kind: Kind, namespace: Option<String>, selector: Option<String>) -> Request {
        Request::List {
            kind,
            namespace,
            selector,
            limit: None,
            continue_token: None,
        }
    }
}

/// How an apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The object did not exist.
    Created,
    /// The object changed.
    Configured,
    /// Nothing to change.
    Unchanged,
}

/// A join token as `token list` shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Unix seconds when it stops working, if it does.
    pub expires: Option<u64>,
    /// Joins it still allows, if it was given a number.
    pub uses_left: Option<u32>,
    /// The note given at creation.
    pub description: String,
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Versions.
    Version {
        /// Server version.
        server: String,
        /// The ALPN in use.
        protocol: String,
    },
    /// The caller's identity.
    Identity {
        /// `admin`, `node:<name>`.
        name: String,
    },
    /// One object (JSON).
    Object {
        /// The object's JSON.
        object: String,
    },
    /// The result of an apply.
    Applied {
        /// What happened.
        outcome: ApplyOutcome,
        /// The object as stored.
        object: String,
    },
    /// A page of a list.
    List {
        /// The store revision when this page was read; watch from the first page's.
        revision: u64,
        /// Objects (JSON).
        items: Vec<String>,
        /// Present when more items follow: pass it back to get the next page.
        continue_token: Option<String>,
    },
    /// Join tokens.
    Tokens {
        /// Tokens.
        tokens: Vec<TokenInfo>,
    },
    /// A new token.
    Token {
        /// The whole token, shown once.
        token: String,
        /// Its public part.
        info: TokenInfo,
    },
    /// A node certificate.
    Joined {
        /// The node's certificate (PEM).
        cert_pem: String,
        /// The CA certificate (PEM).
        ca_pem: String,
    },
    /// Done; nothing to return.
    Ack,
    /// What nodes reported for `top`.
    Usage {
        /// One entry per node that reported.
        nodes: Vec<NodeUsageReport>,
    },
    /// The request failed.
    Error(ApiError),
    /// A ServiceAccount token.
    AccountToken {
        /// The token (a JWT).
        token: String,
        /// When it expires (seconds since the epoch).
        expires: u64,
    },
}

/// A watch stream's messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WatchEvent {
    /// An object appeared.
    Added {
        /// Store revision.
        revision: u64,
        /// Object JSON.
        object: String,
    },
    /// An object changed.
    Modified {
        /// Store revision.
        revision: u64,
        /// Object JSON.
        object: String,
    },
    /// An object went away (its last state).
    Deleted {
        /// Store revision.
        revision: u64,
        /// Object JSON.
        object: String,
    },
    /// The requested revision is older than the retained history: list again.
    Expired {
        /// The oldest revision a watch may resume from.
        oldest: u64,
    },
    /// The watch failed.
    Error(ApiError),
}

/// A change event that borrows its object's text: it encodes exactly as the
/// [`WatchEvent`] variant of the same name (postcard is positional), without a copy of
/// the text. The coordinator sends these.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum WatchEventRef<'a> {
    /// As [`WatchEvent::Added`].
    Added {
        /// Store revision.
        revision: u64,
        /// Object JSON.
        object: &'a str,
    },
    /// As [`WatchEvent::Modified`].
    Modified {
        /// Store revision.
        revision: u64,
        /// Object JSON.
        object: &'a str,
    },
    /// As [`WatchEvent::Deleted`].
    Deleted {
        /// Store revision.
        revision: u64,
        /// Object JSON.
        object: &'a str,
    },
}

impl WatchEvent {
    /// The revision of a change event.
    pub fn revision(&self) -> Option<u64> {
        match self {
            WatchEvent::Added { revision, .. }
            | WatchEvent::Modified { revision, .. }
            | WatchEvent::Deleted { revision, .. } => Some(*revision),
            _ => None,
        }
    }
}

/// Kinds of failure, with Kubernetes' meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// 400.
    BadRequest,
    /// 401: no or unknown credentials.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 409 AlreadyExists.
    AlreadyExists,
    /// 409 Conflict: a stale resourceVersion.
    Conflict,
    /// 410: the revision is compacted.
    Expired,
    /// 413.
    TooLarge,
    /// 422: validation failed.
    Invalid,
    /// 504.
    Timeout,
    /// 500.
    Internal,
    /// 415: a body in a format the server does not read (last: variants keep their
    /// number on the wire).
    UnsupportedMediaType,
    /// Not now: a PodDisruptionBudget allows no disruption (HTTP 429); try again later.
    TooManyRequests,
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// One line a person can act on.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// Framing failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the limit; nothing was allocated.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("truncated frame: stream ended after {got} of {want} bytes")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
    /// The body is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes a message as one frame.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    let out = postcard::to_extend(msg, std::mem::take(&mut out))
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let mut out = out;
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Reads a frame's length prefix and checks it against `max` before anything is allocated.
pub fn frame_len(header: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Decodes a frame body. Trailing bytes are an error.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

/// A sans-I/O frame decoder: push bytes as they arrive, take messages out.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames over `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            max,
        }
    }

    /// Adds received bytes. Refuses (without growing) once a frame header over the limit
    /// is seen.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.buf.len() >= 4 {
            let len = frame_len(self.buf[..4].try_into().expect("4 bytes"), self.max)?;
            if self.buf.len() + bytes.len() > 4 + len + 4 + self.max {
                return Err(FrameError::TooLarge {
                    len: self.buf.len() + bytes.len(),
                    max: self.max,
                });
            }
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= 4 {
            frame_len(self.buf[..4].try_into().expect("4 bytes"), self.max)?;
        }
        Ok(())
    }

    /// The next complete message, if one has arrived.
    pub fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = frame_len(self.buf[..4].try_into().expect("4 bytes"), self.max)?;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let msg = decode_body(&self.buf[4..4 + len]);
        self.buf.drain(..4 + len);
        msg.map(Some)
    }

    /// Call at end of stream: leftover bytes mean a truncated frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let want = if self.buf.len() >= 4 {
            4 + u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize
        } else {
            4
        };
        Err(FrameError::Truncated {
            got: self.buf.len(),
            want,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        Request::List {
            kind: Kind::Pod,
            namespace: Some("default".into()),
            selector: Some("app=web".into()),
            limit: Some(10),
            continue_token: Some("default/web-1".into()),
        }
    }

    #[test]
    fn round_trip_in_pieces() {
        let f1 = encode_frame(&sample()).unwrap();
        let f2 = encode_frame(&Request::Version).unwrap();
        let all = [f1, f2].concat();
        let mut d = FrameDecoder::new(MAX_FRAME_LEN);
        let mut got = Vec::new();
        for b in all.chunks(3) {
            d.push(b).unwrap();
            while let Some(m) = d.next_frame::<Request>().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![sample(), Request::Version]);
        d.finish().unwrap();
    }

    #[test]
    fn borrowed_events_encode_as_owned_ones() {
        let text = r#"{"kind":"Pod","metadata":{"name":"p"}}"#;
        let pairs = [
            (
                WatchEventRef::Added {
                    revision: 7,
                    object: text,
                },
                WatchEvent::Added {
                    revision: 7,
                    object: text.into(),
                },
            ),
            (
                WatchEventRef::Modified {
                    revision: 300,
                    object: text,
                },
                WatchEvent::Modified {
                    revision: 300,
                    object: text.into(),
                },
            ),
            (
                WatchEventRef::Deleted {
                    revision: u64::MAX,
                    object: "",
                },
                WatchEvent::Deleted {
                    revision: u64::MAX,
                    object: String::new(),
                },
            ),
        ];
        for (borrowed, owned) in pairs {
            assert_eq!(
                encode_frame(&borrowed).unwrap(),
                encode_frame(&owned).unwrap()
            );
        }
    }

    #[test]
    fn oversized_is_refused_from_the_header() {
        let mut d = FrameDecoder::new(1024);
        let err = d.push(&(1_000_000u32).to_be_bytes()).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                len: 1_000_000,
                max: 1024
            }
        );
        assert!(frame_len(u32::MAX.to_be_bytes(), MAX_FRAME_LEN).is_err());
    }

    #[test]
    fn truncated_and_garbage() {
        let f = encode_frame(&sample()).unwrap();
        let mut d = FrameDecoder::new(MAX_FRAME_LEN);
        d.push(&f[..f.len() - 2]).unwrap();
        assert_eq!(d.next_frame::<Request>().unwrap(), None);
        assert!(matches!(d.finish(), Err(FrameError::Truncated { .. })));
        let mut g = FrameDecoder::new(MAX_FRAME_LEN);
        g.push(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(
            g.next_frame::<Request>(),
            Err(FrameError::Malformed(_))
        ));
        // Trailing bytes inside a frame are refused too.
        let mut body = postcard::to_allocvec(&Request::Version).unwrap();
        body.push(7);
        assert!(decode_body::<Request>(&body).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut d = FrameDecoder::new(128);
            if d.push(&bytes).is_ok() {
                while let Ok(Some(_)) = d.next_frame::<Request>() {}
            }
        }
    }
}

/// How an owner's dependents go when it is deleted (`skiff delete --cascade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Propagation {
    /// The owner goes now; the garbage collector deletes its dependents after.
    #[default]
    Background,
    /// The dependents go first; the owner stays (with `deletionTimestamp`) until they are gone.
    Foreground,
    /// The dependents stay, their owner reference removed.
    Orphan,
}
