//! Join tokens (Kubernetes' bootstrap token Secrets in `kube-system`) and node enrolment:
//! a node presents a token and a certificate request and gets its certificate.

use super::credentials::secret_field;
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
                uses,
                description,
            } => self.token_create(ttl_seconds, uses, description).await,
            Request::TokenList => Ok(Response::Tokens {
                tokens: self.token_list()?,
            }),
            Request::TokenRevoke { id: tid } => {
                let key = token_key(&tid);
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
        uses: Option<u32>,
        description: String,
    ) -> Result<Response, ApiError> {
        if uses == Some(0) {
            return Err(err(
                ErrorCode::Invalid,
                "uses: a token must allow at least one join (leave it out for any number)",
            ));
        }
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let id = random_string(6, alphabet);
        let secret = random_string(16, alphabet);
        let expires = ttl.map(|t| now() + t);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut data = serde_json::Map::new();
        data.insert("token-id".into(), b64.encode(&id).into());
        // The store keeps the secret's hash, never the secret: a copy of the store (a
        // backup, a snapshot) lets nobody join.
        data.insert(
            "token-secret-sha256".into(),
            b64.encode(sha256_hex(secret.as_bytes())).into(),
        );
        data.insert(
            "usage-bootstrap-authentication".into(),
            b64.encode("true").into(),
        );
        data.insert("description".into(), b64.encode(&description).into());
        if let Some(e) = expires {
            data.insert("expiration".into(), b64.encode(rfc3339(e)).into());
        }
        if let Some(n) = uses {
            data.insert("uses-remaining".into(), b64.encode(n.to_string()).into());
        }
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
            "metadata": {"name": token_key(&id).name, "namespace": "kube-system"},
            "data": data,
        });
        let o = decode(&v.to_string())?;
        self.create(o).await?;
        Ok(Response::Token {
            token: format!("SK10{}::{id}.{secret}", self.pki.ca_fingerprint()),
            info: TokenInfo {
                id,
                expires,
                uses_left: uses,
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
            let field = |k: &str| secret_field(&sec, k);
            out.push(TokenInfo {
                id: field("token-id").unwrap_or_default(),
                expires: field("expiration").and_then(|e| parse_rfc3339(&e)),
                uses_left: field("uses-remaining").and_then(|n| n.parse().ok()),
                description: field("description").unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Checks a join token; returns its record when valid (expired, used up, revoked or
    /// wrong: one answer, which says nothing of which).
    fn check_token(&self, token: &str) -> Result<Stored, ApiError> {
        let bad = || err(ErrorCode::Unauthorized, "invalid or expired join token");
        let (fp, cred) = skiff_transport::parse_token(token).ok_or_else(bad)?;
        if fp != self.pki.ca_fingerprint() {
            return Err(bad());
        }
        let (id, secret) = cred.split_once('.').ok_or_else(bad)?;
        if id.len() > 64 {
            return Err(bad());
        }
        let s = self
            .store
            .get(&token_key(id))
            .map_err(store_err)?
            .ok_or_else(bad)?;
        let Object::Secret(sec) = stored_object(&s)? else {
            return Err(bad());
        };
        if sec.type_.as_deref() != Some(TOKEN_TYPE) {
            return Err(bad());
        }
        let stored_hash = secret_field(&sec, "token-secret-sha256").ok_or_else(bad)?;
        let hash = sha256_hex(secret.as_bytes());
        if !constant_time_eq(stored_hash.as_bytes(), hash.as_bytes()) {
            return Err(bad());
        }
        if let Some(exp) = secret_field(&sec, "expiration") {
            let exp = parse_rfc3339(&exp).ok_or_else(bad)?;
            if exp <= now() {
                return Err(bad());
            }
        }
        if secret_field(&sec, "uses-remaining").is_some_and(|n| n.parse::<u32>().unwrap_or(0) == 0)
        {
            return Err(bad());
        }
        Ok(s)
    }

    /// Takes one use of a token (the last use deletes it); the token must still be valid.
    async fn redeem_token(&self, token: &str) -> Result<(), ApiError> {
        for _ in 0..8 {
            let s = self.check_token(token)?;
            let Object::Secret(mut sec) = stored_object(&s)? else {
                return Err(err(
                    ErrorCode::Unauthorized,
                    "invalid or expired join token",
                ));
            };
            let left = match secret_field(&sec, "uses-remaining") {
                None => return Ok(()),
                Some(n) => n.parse::<u32>().unwrap_or(0),
            };
            let op = if left <= 1 {
                WriteOp::Delete {
                    key: s.key.clone(),
                    expected: Some(s.revision),
                }
            } else {
                let b64 = base64::engine::general_purpose::STANDARD;
                sec.data
                    .insert("uses-remaining".into(), b64.encode((left - 1).to_string()));
                let mut o = Object::Secret(sec);
                WriteOp::Update {
                    put: Put::from_object(&mut o).map_err(store_err)?,
                    expected: Some(s.revision),
                }
            };
            match self.store.write(op).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(err(
            ErrorCode::Conflict,
            "the join token is being used by many nodes at once; try again",
        ))
    }

    /// A node presents a token and a CSR: if the token is good and no live certificate
    /// holds the name, the node gets a certificate, recorded as the name's.
    pub(super) async fn join(
        &self,
        token: &str,
        node: &str,
        csr: &str,
    ) -> Result<Response, ApiError> {
        self.check_token(token)?;
        if let Some(why) = dns1123_subdomain_problem(node) {
            return Err(err(
                ErrorCode::Invalid,
                format!("node name {node:?}: {why}"),
            ));
        }
        if node.len() > 200 {
            return Err(err(
                ErrorCode::Invalid,
                format!("node name {node:?}: must be no more than 200 characters"),
            ));
        }
        let held = self.credential(node)?;
        if let Some(c) = held.as_ref().filter(|c| c.not_after > now()) {
            return Err(err(
                ErrorCode::AlreadyExists,
                format!(
                    "node name {node:?} is taken: a live certificate (until {}) holds it. A token cannot take over a node; if this is the same machine, keep its data dir (its own key rejoins); if the old node is gone, remove it first with `skiff delete node {node}`",
                    rfc3339(c.not_after)
                ),
            ));
        }
        let (cert, facts) = self.sign_node_certificate(node, csr)?;
        self.redeem_token(token).await?;
        self.record_credential(node, &facts, None, held.map(|c| c.revision))
            .await?;
        tracing::info!(node, expires = %rfc3339(facts.not_after), "node joined");
        self.set_certificate_condition(
            node,
            "False",
            "Readmitted",
            "the node joined again with a token",
        )
        .await;
        Ok(Response::Joined {
            cert_pem: cert,
            ca_pem: self.pki.ca_pem.clone(),
        })
    }
}

fn token_key(id: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::Secret,
        namespace: "kube-system".into(),
        name: format!("bootstrap-token-{id}"),
    }
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
