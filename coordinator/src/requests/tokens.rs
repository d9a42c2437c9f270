//! Join tokens (Kubernetes' bootstrap token Secrets in `kube-system`) and node enrolment:
//! a node presents a token and a certificate request and gets its certificate.

use super::*;

pub(super) const TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";

/// Compares secrets without an early exit on the first differing byte.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S: Store> Api<S> {
    /// Token requests (the caller is an admin).
    pub(super) async fn tokens(&self, req: Request) -> Result<Response, ApiError> {
        match req {
            Request::TokenCreate {
                ttl_seconds,
                description,
            } => self.token_create(ttl_seconds, description).await,
            Request::TokenList => Ok(Response::Tokens {
                tokens: self.token_list()?,
            }),
            Request::TokenRevoke { id: tid } => {
                let key = ObjectKey {
                    kind: Kind::Secret,
                    namespace: "kube-system".into(),
                    name: format!("bootstrap-token-{tid}"),
                };
                self.store
                    .write(WriteOp::Delete {
                        key,
                        expected: None,
                    })
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound(_) => {
                            err(ErrorCode::NotFound, format!("token {tid:?} not found"))
                        }
                        e => store_err(e),
                    })?;
                Ok(Response::Tokens {
                    tokens: self.token_list()?,
                })
            }
            _ => Err(err(ErrorCode::BadRequest, "not a token request")),
        }
    }

    pub(super) async fn token_create(
        &self,
        ttl: Option<u64>,
        description: String,
    ) -> Result<Response, ApiError> {
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let id = random_string(6, alphabet);
        let secret = random_string(16, alphabet);
        let expires = ttl.map(|t| now() + t);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut data = serde_json::Map::new();
        data.insert("token-id".into(), b64.encode(&id).into());
        data.insert("token-secret".into(), b64.encode(&secret).into());
        data.insert(
            "usage-bootstrap-authentication".into(),
            b64.encode("true").into(),
        );
        data.insert("description".into(), b64.encode(&description).into());
        if let Some(e) = expires {
            data.insert("expiration".into(), b64.encode(rfc3339(e)).into());
        }
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
            "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
            "data": data,
        });
        let o = decode(&v.to_string())?;
        self.create(o).await?;
        Ok(Response::Token {
            token: format!("SK10{}::{id}.{secret}", self.pki.ca_fingerprint()),
            info: TokenInfo {
                id,
                expires,
                description,
            },
        })
    }

    pub(super) fn token_list(&self) -> Result<Vec<TokenInfo>, ApiError> {
        let (_, secrets) = self
            .store
            .list(Kind::Secret, Some("kube-system"))
            .map_err(store_err)?;
        let mut out = Vec::new();
        for s in secrets {
            let Ok(Object::Secret(sec)) = stored_object(&s) else {
                continue;
            };
            if sec.type_.as_deref() != Some(TOKEN_TYPE) {
                continue;
            }
            let field = |k: &str| {
                sec.data
                    .get(k)
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            };
            out.push(TokenInfo {
                id: field("token-id").unwrap_or_default(),
                expires: field("expiration").and_then(|e| parse_rfc3339(&e)),
                description: field("description").unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Checks a join token; returns its id when valid.
    pub fn check_token(&self, token: &str) -> Result<String, ApiError> {
        let bad = || err(ErrorCode::Unauthorized, "invalid or expired join token");
        let (fp, cred) = skiff_transport::parse_token(token).ok_or_else(bad)?;
        if fp != self.pki.ca_fingerprint() {
            return Err(bad());
        }
        let (id, secret) = cred.split_once('.').ok_or_else(bad)?;
        let key = ObjectKey {
            kind: Kind::Secret,
            namespace: "kube-system".into(),
            name: format!("bootstrap-token-{id}"),
        };
        let s = self.store.get(&key).map_err(store_err)?.ok_or_else(bad)?;
        let Object::Secret(sec) = stored_object(&s)? else {
            return Err(bad());
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let stored_secret = sec
            .data
            .get("token-secret")
            .and_then(|v| b64.decode(v).ok())
            .ok_or_else(bad)?;
        if !constant_time_eq(&stored_secret, secret.as_bytes()) {
            return Err(bad());
        }
        if let Some(exp) = sec.data.get("expiration").and_then(|v| b64.decode(v).ok()) {
            let exp = parse_rfc3339(&String::from_utf8_lossy(&exp)).ok_or_else(bad)?;
            if exp <= now() {
                return Err(bad());
            }
        }
        Ok(id.to_string())
    }

    pub(super) fn join(&self, token: &str, node: &str, csr: &str) -> Result<Response, ApiError> {
        self.check_token(token)?;
        if let Some(why) = dns1123_subdomain_problem(node) {
            return Err(err(
                ErrorCode::Invalid,
                format!("node name {node:?}: {why}"),
            ));
        }
        let cert = self.pki.sign_node_csr(csr, node).map_err(|e| {
            err(
                ErrorCode::BadRequest,
                format!("certificate signing request: {e}"),
            )
        })?;
        tracing::info!(node, "node joined");
        Ok(Response::Joined {
            cert_pem: cert,
            ca_pem: self.pki.ca_pem.clone(),
        })
    }
}
