//! Strangers at a coordinator's front door, for the flood test and `skiff-bench
//! front-door`: peers without a certificate that connect as fast as they are let in, open
//! every stream they may, announce frames of the largest size and stall; and an
//! authenticated peer that opens streams past its limit and stalls on each.

use skiff_api::wire::{MAX_FRAME_LEN, MAX_JOIN_FRAME_LEN};
use skiff_transport::config::ClientConfig;
use skiff_transport::Client;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the strangers managed.
#[derive(Default, Debug)]
pub struct Counts {
    /// Connections the coordinator let in.
    pub connected: AtomicUsize,
    /// Attempts it refused (or that timed out).
    pub refused: AtomicUsize,
    /// Streams opened on those connections.
    pub streams: AtomicUsize,
    /// Streams asked for past the limit, which the coordinator never granted.
    pub withheld: AtomicUsize,
}

impl Counts {
    pub fn get(&self) -> (usize, usize, usize, usize) {
        (
            self.connected.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.streams.load(Ordering::Relaxed),
            self.withheld.load(Ordering::Relaxed),
        )
    }
}

/// The CA fingerprint a join token carries (what any stranger who saw one knows).
pub fn fingerprint(token: &str) -> String {
    skiff_transport::client::parse_token(token)
        .expect("a join token")
        .0
}

/// Opens up to `want` streams on `conn` (waiting `patience` for each), announces on each a
/// frame of `announce` bytes and sends `send` of them, then leaves them open. Returns the
/// streams (dropping them would end them).
async fn stall(
    conn: &quinn::Connection,
    want: usize,
    announce: usize,
    send: usize,
    patience: Duration,
    counts: &Counts,
) -> Vec<(quinn::SendStream, quinn::RecvStream)> {
    let mut held = Vec::new();
    for _ in 0..want {
        match tokio::time::timeout(patience, conn.open_bi()).await {
            Ok(Ok((mut s, r))) => {
                counts.streams.fetch_add(1, Ordering::Relaxed);
                let mut bytes = (announce as u32).to_be_bytes().to_vec();
                bytes.resize(4 + send, 0x5a);
                // The coordinator may refuse the frame (and reset the stream): that is fine.
                let _ = tokio::time::timeout(patience, s.write_all(&bytes)).await;
                held.push((s, r));
            }
            Ok(Err(_)) => break,
            Err(_) => {
                counts.withheld.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    held
}

/// One stranger, again and again until `stop`: connects without a certificate, opens one
/// stream more than a stranger may, announces on each a join frame of the largest size
/// and sends all of it but one byte, and stalls until the coordinator ends the connection.
pub async fn stranger(
    server: String,
    ca_fingerprint: String,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) {
    let host = server
        .rsplit_once(':')
        .map_or(server.as_str(), |(h, _)| h)
        .to_string();
    while !stop.load(Ordering::Relaxed) {
        let tls = skiff_transport::tls::join_tls(&ca_fingerprint).expect("join tls");
        let client = match Client::connect_with(&server, &host, tls).await {
            Ok(c) => c,
            Err(_) => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        counts.connected.fetch_add(1, Ordering::Relaxed);
        let conn = client.connection().clone();
        let held = stall(
            &conn,
            3,
            MAX_JOIN_FRAME_LEN,
            MAX_JOIN_FRAME_LEN - 1,
            Duration::from_millis(500),
            &counts,
        )
        .await;
        // Also a header announcing the largest frame of all, which a stranger may not send.
        let _big = stall(
            &conn,
            1,
            MAX_FRAME_LEN,
            0,
            Duration::from_millis(200),
            &counts,
        )
        .await;
        while !stop.load(Ordering::Relaxed) && conn.close_reason().is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(held);
        conn.close(0u32.into(), b"");
    }
}

/// An authenticated peer (a node's or admin's config) that opens `streams` streams on one
/// connection, each announcing the largest frame and sending `send` bytes of it, and holds
/// them until `stop`.
/// `ready` is told once it holds its streams.
pub async fn greedy(
    cfg: ClientConfig,
    streams: usize,
    send: usize,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let Ok(client) = Client::connect(&cfg).await else {
        counts.refused.fetch_add(1, Ordering::Relaxed);
        let _ = ready.send(());
        return;
    };
    counts.connected.fetch_add(1, Ordering::Relaxed);
    let conn = client.connection().clone();
    let held = stall(
        &conn,
        streams,
        MAX_FRAME_LEN,
        send,
        Duration::from_millis(300),
        &counts,
    )
    .await;
    let _ = ready.send(());
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);
}

/// A flood under way: what the strangers and the greedy peer got.
pub struct Flood {
    pub strangers: Arc<Counts>,
    pub greedy: Arc<Counts>,
    stop: Arc<AtomicBool>,
}

impl Flood {
    /// Tells every peer to let go.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts, on the current runtime, one greedy authenticated peer asking for 8 streams
/// more than its limit (with a config; it connects first), then `n` strangers.
pub async fn start(server: &str, token: &str, n: usize, greedy_cfg: Option<ClientConfig>) -> Flood {
    let counts = Arc::new(Counts::default());
    let greedy_counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let fp = fingerprint(token);
    if let Some(cfg) = greedy_cfg {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(greedy(
            cfg,
            skiff_coordinator::front_door::STREAMS as usize + 8,
            64 << 10,
            greedy_counts.clone(),
            stop.clone(),
            tx,
        ));
        let _ = rx.await;
    }
    for _ in 0..n {
        tokio::spawn(stranger(
            server.to_string(),
            fp.clone(),
            counts.clone(),
            stop.clone(),
        ));
    }
    Flood {
        strangers: counts,
        greedy: greedy_counts,
        stop,
    }
}

/// One admin request as the flood test and benchmark measure them: even `i` writes (apply
/// a ConfigMap), odd `i` reads it back. Returns how long it took.
pub async fn admin_request(c: &Client, i: u64) -> Result<Duration, skiff_transport::ClientError> {
    use skiff_api::wire::Request;
    let t = std::time::Instant::now();
    if i.is_multiple_of(2) {
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "front-door-probe", "namespace": "default"},
            "data": {"i": i.to_string()},
        });
        c.call(&Request::Apply {
            object: object.to_string(),
        })
        .await?;
    } else {
        c.get_json(skiff_api::ObjectKey {
            kind: skiff_api::Kind::ConfigMap,
            namespace: "default".into(),
            name: "front-door-probe".into(),
        })
        .await?;
    }
    Ok(t.elapsed())
}
