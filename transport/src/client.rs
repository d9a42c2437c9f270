//! The QUIC + mTLS client for the skiff API.
//!
//! One QUIC connection per client; each request opens a bidirectional stream, writes one
//! request frame and reads one response frame. A watch keeps its stream open and reads
//! event frames until either side closes it.

use crate::{config, frames, tls, udp};
use config::ClientConfig;
use skiff_api::wire::{
    ApiError, ErrorCode, Request, Response, WatchEvent, CREDENTIAL_REFUSED, MAX_FRAME_LEN,
};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The address is not usable.
    #[error("cannot resolve server address {0:?}")]
    Address(String),
    /// Connecting failed.
    #[error("cannot connect to {server}: {message}")]
    Connect {
        /// The server.
        server: String,
        /// Why.
        message: String,
    },
    /// A stream failed.
    #[error("connection to the coordinator failed: {0}")]
    Stream(String),
    /// The server sent an unexpected answer.
    #[error("unexpected answer from the coordinator: {0}")]
    Unexpected(String),
    /// No answer in time.
    #[error("no answer from the coordinator within {0:?}")]
    Timeout(Duration),
    /// The coordinator refused the client's certificate (expired, revoked or replaced);
    /// the reason says how an admin readmits the node.
    #[error("the coordinator refused this credential: {0}")]
    Refused(String),
}

impl ClientError {
    /// The API error code, if the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api(e) => Some(e.code),
            _ => None,
        }
    }
}

impl From<frames::ReadError> for ClientError {
    fn from(e: frames::ReadError) -> Self {
        ClientError::Stream(e.to_string())
    }
}

/// A connection to the coordinator.
#[derive(Clone)]
pub struct Client {
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    timeout: Duration,
}

fn resolve(server: &str) -> Result<SocketAddr, ClientError> {
    server
        .to_socket_addrs()
        .map_err(|_| ClientError::Address(server.to_string()))?
        .next()
        .ok_or_else(|| ClientError::Address(server.to_string()))
}

fn host_of(server: &str) -> String {
    match server.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => server.to_string(),
    }
}

/// QUIC transport settings shared by both ends.
pub fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(Duration::from_secs(30).try_into().expect("in range")));
    t.keep_alive_interval(Some(Duration::from_secs(10)));
    // quinn keeps state for every stream a peer may open from the start (about 150 bytes
    // each): 128 requests in flight per connection is plenty for a node or a CLI, and a
    // coordinator with a thousand nodes keeps 20 KB per connection instead of 170 KB.
    t.max_concurrent_bidi_streams(128u32.into());
    // Nothing uses unidirectional streams.
    t.max_concurrent_uni_streams(0u32.into());
    // Ask the peer (quinn on both ends) to acknowledge less often: fewer ACK-only packets.
    t.ack_frequency_config(Some(quinn::AckFrequencyConfig::default()));
    t
}

impl Client {
    /// Connects with a client config.
    pub async fn connect(cfg: &ClientConfig) -> Result<Client, ClientError> {
        let tls = tls::client_tls(
            &cfg.certificate_authority,
            Some(&cfg.client_certificate),
            Some(&cfg.client_key),
        )?;
        let name = cfg
            .server_name
            .clone()
            .unwrap_or_else(|| host_of(&cfg.server));
        Self::connect_with(&cfg.server, &name, tls).await
    }

    /// Connects with an explicit TLS config (joining, tests).
    pub async fn connect_with(
        server: &str,
        server_name: &str,
        tls: rustls::ClientConfig,
    ) -> Result<Client, ClientError> {
        let addr = resolve(server)?;
        let mut endpoint = udp::client_endpoint(addr).map_err(|e| ClientError::Connect {
            server: server.into(),
            message: e.to_string(),
        })?;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| {
            ClientError::Connect {
                server: server.into(),
                message: e.to_string(),
            }
        })?;
        let mut cc = quinn::ClientConfig::new(Arc::new(quic));
        cc.transport_config(Arc::new(transport()));
        endpoint.set_default_client_config(cc);
        let connecting = endpoint
            .connect(addr, server_name)
            .map_err(|e| ClientError::Connect {
                server: server.into(),
                message: e.to_string(),
            })?;
        let conn = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .map_err(|_| ClientError::Connect {
                server: server.into(),
                message: "no answer within 10s (is the coordinator running?)".into(),
            })?
            .map_err(|e| ClientError::Connect {
                server: server.into(),
                message: e.to_string(),
            })?;
        Ok(Client {
            conn,
            _endpoint: endpoint,
            timeout: Duration::from_secs(30),
        })
    }

    /// Sets the per-request deadline.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The QUIC endpoint the connection runs on (to rebind its socket).
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self._endpoint
    }

    /// The underlying QUIC connection.
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Sends a request and returns the answer; an error answer becomes `Err`.
    pub async fn call(&self, req: &Request) -> Result<Response, ClientError> {
        let fut = async {
            let (mut send, mut recv) = self
                .conn
                .open_bi()
                .await
                .map_err(|e| ClientError::Stream(e.to_string()))?;
            frames::write_frame(&mut send, req).await?;
            send.finish()
                .map_err(|e| ClientError::Stream(e.to_string()))?;
            let resp: Response = frames::read_frame(&mut recv, MAX_FRAME_LEN)
                .await?
                .ok_or_else(|| {
                    ClientError::Stream(
                        "the coordinator closed the stream without answering".into(),
                    )
                })?;
            frames::take_end(&mut recv);
            match resp {
                Response::Error(e) => Err(ClientError::Api(e)),
                r => Ok(r),
            }
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
            .map_err(|e| self.refined(e))
    }

    /// Why the coordinator refused this connection's credential, if it closed the
    /// connection for that.
    pub fn refusal(&self) -> Option<String> {
        match self.conn.close_reason()? {
            quinn::ConnectionError::ApplicationClosed(c)
                if c.error_code == CREDENTIAL_REFUSED.into() =>
            {
                Some(String::from_utf8_lossy(&c.reason).into_owned())
            }
            _ => None,
        }
    }

    /// A stream failure on a connection the coordinator closed for its credential says so.
    fn refined(&self, e: ClientError) -> ClientError {
        match (&e, self.refusal()) {
            (ClientError::Stream(_), Some(why)) => ClientError::Refused(why),
            _ => e,
        }
    }

    /// Starts a watch (a `Request::Watch`).
    pub async fn watch(&self, req: &Request) -> Result<Watch, ClientError> {
        let (mut send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| self.refined(ClientError::Stream(e.to_string())))?;
        frames::write_frame(&mut send, req)
            .await
            .map_err(|e| self.refined(e.into()))?;
        Ok(Watch { _send: send, recv })
    }

    /// Every object of a list, following continue tokens. The revision is the first
    /// page's: a watch from it misses nothing.
    pub async fn list_all(
        &self,
        kind: skiff_api::Kind,
        namespace: Option<String>,
        selector: Option<String>,
    ) -> Result<(u64, Vec<String>), ClientError> {
        let mut out = Vec::new();
        let mut token = None;
        let mut first = None;
        loop {
            let req = Request::List {
                kind,
                namespace: namespace.clone(),
                selector: selector.clone(),
                limit: None,
                continue_token: token.take(),
            };
            match self.call(&req).await? {
                Response::List {
                    revision,
                    items,
                    continue_token,
                } => {
                    first.get_or_insert(revision);
                    out.extend(items);
                    match continue_token {
                        Some(t) => token = Some(t),
                        None => return Ok((first.unwrap_or(0), out)),
                    }
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// An object as JSON.
    pub async fn get_json(
        &self,
        key: skiff_api::ObjectKey,
    ) -> Result<serde_json::Value, ClientError> {
        match self.call(&Request::Get { key }).await? {
            Response::Object { object } => {
                serde_json::from_str(&object).map_err(|e| ClientError::Unexpected(e.to_string()))
            }
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// An open watch.
pub struct Watch {
    _send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl Watch {
    /// The next event; `None` when the server ended the watch.
    pub async fn next(&mut self) -> Result<Option<WatchEvent>, ClientError> {
        Ok(frames::read_frame(&mut self.recv, MAX_FRAME_LEN).await?)
    }
}

/// Joins a cluster with a node join token: verifies the coordinator by the token's CA
/// fingerprint, sends a CSR, and returns a client config holding the node's credentials.
pub async fn join(server: &str, token: &str, node_name: &str) -> Result<ClientConfig, ClientError> {
    let (fp, _) = parse_token(token).ok_or_else(|| {
        ClientError::Api(ApiError::new(
            ErrorCode::BadRequest,
            "malformed join token: want SK10<ca-hash>::<id>.<secret>",
        ))
    })?;
    let tls = tls::join_tls(&fp)?;
    let client = Client::connect_with(server, &host_of(server), tls).await?;
    let (key, csr) = node_csr(node_name)?;
    match client
        .call(&Request::Join {
            token: token.to_string(),
            node_name: node_name.to_string(),
            csr_pem: csr,
        })
        .await?
    {
        Response::Joined { cert_pem, ca_pem } => {
            Ok(ClientConfig::new(server.to_string(), ca_pem, cert_pem, key))
        }
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
}

/// A new key for node `node_name` and a CSR for it (PEM key, PEM CSR).
fn node_csr(node_name: &str) -> Result<(String, String), ClientError> {
    let unexpected = |e: rcgen::Error| ClientError::Unexpected(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(unexpected)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(unexpected)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("system:node:{node_name}"),
    );
    let csr = params
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(unexpected)?;
    Ok((key.serialize_pem(), csr))
}

/// Renews a node's certificate over its session: a new key, signed by the coordinator;
/// returns `cfg` with the new certificate and key (the connection carries on with the old
/// one, which stays valid until it expires).
pub async fn renew(
    client: &Client,
    cfg: &ClientConfig,
    node_name: &str,
) -> Result<ClientConfig, ClientError> {
    let (key, csr_pem) = node_csr(node_name)?;
    match client.call(&Request::Renew { csr_pem }).await? {
        Response::Joined { cert_pem, ca_pem } => {
            let mut new = cfg.clone();
            new.client_certificate = cert_pem;
            new.client_key = key;
            new.certificate_authority = ca_pem;
            Ok(new)
        }
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
}

/// Splits `SK10<ca-hash>::<id>.<secret>` into the CA fingerprint and `<id>.<secret>`.
pub fn parse_token(token: &str) -> Option<(String, String)> {
    let rest = token.trim().strip_prefix("SK10")?;
    let (fp, cred) = rest.split_once("::")?;
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (id, secret) = cred.split_once('.')?;
    if id.is_empty() || secret.is_empty() {
        return None;
    }
    Some((fp.to_ascii_lowercase(), cred.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse() {
        let fp = "a".repeat(64);
        assert_eq!(
            parse_token(&format!("SK10{fp}::abc123.secret")),
            Some((fp.clone(), "abc123.secret".into()))
        );
        assert_eq!(parse_token("K10abc::x.y"), None);
        assert_eq!(parse_token(&format!("SK10{fp}::nodot")), None);
    }
}
