//! A minimal etcd v3 client speaking etcd's native gRPC (HTTP/2 + protobuf), for the
//! benchmark's reference: Put, a prefix Range count, and Watch. Hand-encoded protobuf
//! keeps protoc and tonic out of the build.

use bytes::{Buf, Bytes, BytesMut};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// An etcd process on loopback.
pub struct EtcdProcess {
    child: Child,
    /// Client address.
    pub addr: SocketAddr,
}

impl EtcdProcess {
    /// Starts Debian's etcd on loopback with its data in `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<EtcdProcess> {
        let client = crate::free_tcp_port();
        let peer = crate::free_tcp_port();
        let child = Command::new("etcd")
            .args(["--name", "bench", "--data-dir"])
            .arg(dir)
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client}"),
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("bench=http://127.0.0.1:{peer}"),
            ])
            .args(["--log-level", "error", "--logger", "zap"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(EtcdProcess {
            child,
            addr: format!("127.0.0.1:{client}").parse()?,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a Put succeeds.
    pub async fn ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = Etcd::connect(self.addr).await {
                if c.put(b"/ready", b"1").await.is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("etcd did not become ready on {}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/2 connection to etcd.
#[derive(Clone)]
pub struct Etcd {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(5 + msg.len());
    b.push(0);
    b.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    b.extend_from_slice(msg);
    Bytes::from(b)
}

/// Top-level fields of a protobuf message: (field number, varint value or payload).
fn fields(mut m: &[u8]) -> Vec<(u32, u64, Vec<u8>)> {
    fn read_varint(m: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *m.first()?;
            *m = &m[1..];
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !m.is_empty() {
        let Some(tag) = read_varint(&mut m) else {
            break;
        };
        let (field, wt) = ((tag >> 3) as u32, tag & 7);
        match wt {
            0 => {
                let Some(v) = read_varint(&mut m) else { break };
                out.push((field, v, vec![]));
            }
            2 => {
                let Some(len) = read_varint(&mut m) else {
                    break;
                };
                let len = len as usize;
                if len > m.len() {
                    break;
                }
                out.push((field, 0, m[..len].to_vec()));
                m = &m[len..];
            }
            1 => m = m.get(8..).unwrap_or(&[]),
            5 => m = m.get(4..).unwrap_or(&[]),
            _ => break,
        }
    }
    out
}

/// Splits a gRPC body into messages.
fn grpc_messages(buf: &mut BytesMut) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while buf.len() >= 5 {
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        buf.advance(5);
        out.push(buf.split_to(len).to_vec());
    }
    out
}

impl Etcd {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Etcd> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Etcd {
            send,
            authority: addr.to_string(),
        })
    }

    fn request(&self, path: &str) -> http::Request<()> {
        http::Request::builder()
            .method("POST")
            .uri(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("valid request")
    }

    async fn unary(&self, path: &str, msg: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut send = self.send.clone().ready().await?;
        let (resp, mut stream) = send.send_request(self.request(path), false)?;
        stream.send_data(grpc_frame(msg), true)?;
        let resp = resp.await?;
        let mut body = resp.into_body();
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            buf.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await?;
        let status = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0");
        if status != "0" {
            let msg = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-message"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            anyhow::bail!("etcd {path}: grpc-status {status} {msg}");
        }
        Ok(grpc_messages(&mut buf)
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// A durable Put (etcd acknowledges after its WAL fsync).
    pub async fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        let mut m = Vec::new();
        bytes_field(1, key, &mut m);
        bytes_field(2, value, &mut m);
        self.unary("/etcdserverpb.KV/Put", &m).await.map(|_| ())
    }

    /// How many keys start with `prefix`.
    pub async fn count_prefix(&self, prefix: &[u8]) -> anyhow::Result<u64> {
        let mut end = prefix.to_vec();
        *end.last_mut().expect("non-empty prefix") += 1;
        let mut m = Vec::new();
        bytes_field(1, prefix, &mut m);
        bytes_field(2, &end, &mut m);
        m.extend([0x48, 0x01]); // count_only (field 9) = true
        let resp = self.unary("/etcdserverpb.KV/Range", &m).await?;
        Ok(fields(&resp)
            .into_iter()
            .find(|f| f.0 == 4)
            .map(|f| f.1)
            .unwrap_or(0))
    }

    /// Watches a prefix; returns a receiver of event counts per WatchResponse.
    pub async fn watch_prefix(&self, prefix: &[u8]) -> anyhow::Result<EtcdWatch> {
        let mut end = prefix.to_vec();
        *end.last_mut().expect("non-empty prefix") += 1;
        let mut create = Vec::new();
        bytes_field(1, prefix, &mut create);
        bytes_field(2, &end, &mut create);
        let mut m = Vec::new();
        bytes_field(1, &create, &mut m);
        let mut send = self.send.clone().ready().await?;
        let (resp, mut stream) =
            send.send_request(self.request("/etcdserverpb.Watch/Watch"), false)?;
        stream.send_data(grpc_frame(&m), false)?;
        let body = resp.await?.into_body();
        let mut w = EtcdWatch {
            body,
            buf: BytesMut::new(),
            _stream: stream,
        };
        // The first response confirms the watch (created = true, no events).
        w.next_events().await?;
        Ok(w)
    }
}

/// An open etcd watch.
pub struct EtcdWatch {
    body: h2::RecvStream,
    buf: BytesMut,
    _stream: h2::SendStream<Bytes>,
}

impl EtcdWatch {
    /// Waits for the next WatchResponse and returns how many events it carries.
    pub async fn next_events(&mut self) -> anyhow::Result<usize> {
        loop {
            let msgs = grpc_messages(&mut self.buf);
            if let Some(m) = msgs.first() {
                // Put back any further messages.
                let mut rest = BytesMut::new();
                for extra in &msgs[1..] {
                    rest.extend_from_slice(&[0]);
                    rest.extend_from_slice(&(extra.len() as u32).to_be_bytes());
                    rest.extend_from_slice(extra);
                }
                rest.extend_from_slice(&self.buf);
                self.buf = rest;
                return Ok(fields(m).iter().filter(|f| f.0 == 11).count());
            }
            let chunk = self
                .body
                .data()
                .await
                .ok_or_else(|| anyhow::anyhow!("etcd closed the watch"))??;
            let _ = self.body.flow_control().release_capacity(chunk.len());
            self.buf.extend_from_slice(&chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_round_trip() {
        let mut m = Vec::new();
        bytes_field(1, b"key", &mut m);
        varint(300, &mut m.clone());
        m.extend([0x20, 0xac, 0x02]); // field 4 varint 300
        let f = fields(&m);
        assert_eq!(f[0], (1, 0, b"key".to_vec()));
        assert_eq!(f[1], (4, 300, vec![]));
        let mut b = BytesMut::from(&grpc_frame(&m)[..]);
        b.extend_from_slice(&grpc_frame(b"x"));
        assert_eq!(grpc_messages(&mut b), vec![m, b"x".to_vec()]);
    }
}
