//! Node credentials: which certificates speak for a node name. A node's name belongs to
//! the certificates recorded for it (a `skiff.dev/node-credential` Secret in
//! `kube-system`, holding their SHA-256 fingerprints and the newest one's expiry, never a
//! key): a join token mints a certificate only for a name no live certificate holds, a
//! node renews its own over its session, and deleting the Node revokes them.

use super::*;

/// The type of the Secrets that record node credentials.
pub const CREDENTIAL_TYPE: &str = "skiff.dev/node-credential";

/// The record of a node that joined before credentials were recorded: the first
/// certificate it shows is recorded as its own.
const LEGACY: &str = "legacy";

/// The Node condition that says its certificate expired.
pub const CERTIFICATE_CONDITION: &str = "CertificateExpired";

/// How an admin readmits a node whose credential expired or was revoked.
pub fn readmit_hint(node: &str) -> String {
    format!(
        "readmit it: on an admin machine run `skiff token create --uses 1 --ttl 1h`, then restart skiff-agent on {node:?} with --token <that token> (its pods keep running meanwhile)"
    )
}

/// The certificates recorded for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Credential {
    /// Fingerprints of the certificates that speak for it, newest first (the one before
    /// stays valid until it expires, so connections made with it carry on).
    pub fingerprints: Vec<String>,
    /// When the newest certificate expires (unix seconds).
    pub not_after: u64,
    /// The store revision of the record.
    pub revision: u64,
}

/// Facts of a PEM or DER certificate the coordinator signed.
pub struct CertFacts {
    /// SHA-256 of its DER (hex).
    pub fingerprint: String,
    /// Unix seconds it was valid from.
    pub not_before: u64,
    /// Unix seconds it expires.
    pub not_after: u64,
}

impl CertFacts {
    /// Reads a certificate (DER).
    pub fn of_der(der: &[u8]) -> Option<CertFacts> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let v = cert.validity();
        Some(CertFacts {
            fingerprint: skiff_transport::tls::fingerprint(der),
            not_before: u64::try_from(v.not_before.timestamp()).ok()?,
            not_after: u64::try_from(v.not_after.timestamp()).ok()?,
        })
    }

    /// Whether it has expired.
    pub fn expired(&self) -> bool {
        self.not_after <= now()
    }

    /// Reads the first certificate of a PEM text.
    pub fn of_pem(pem: &str) -> Option<CertFacts> {
        let der = skiff_transport::tls::certs_from_pem("cert", pem).ok()?;
        CertFacts::of_der(der.first()?)
    }
}

fn credential_key(node: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::Secret,
        namespace: "kube-system".into(),
        name: format!("node-credential-{node}"),
    }
}

/// A Secret data field as text.
pub(super) fn secret_field(sec: &skiff_api::core::Secret, k: &str) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    sec.data
        .get(k)
        .and_then(|v| b64.decode(v).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Why a certificate does not speak for its node (none: it does).
pub fn credential_problem(
    node: &str,
    recorded: Option<&[String]>,
    presented: &CertFacts,
    now: u64,
) -> Option<String> {
    if presented.not_after <= now {
        return Some(format!(
            "the certificate of node {node:?} expired at {}; {}",
            rfc3339(presented.not_after),
            readmit_hint(node)
        ));
    }
    match recorded {
        Some(prints) if prints.contains(&presented.fingerprint) => None,
        Some(_) => Some(format!(
            "the certificate of node {node:?} was replaced by a newer one (the node joined again or renewed elsewhere); {}",
            readmit_hint(node)
        )),
        None => Some(format!(
            "the credential of node {node:?} was revoked (its Node was deleted); {}",
            readmit_hint(node)
        )),
    }
}

impl<S: Store> Api<S> {
    /// The certificates recorded for `node`, if any.
    pub(super) fn credential(&self, node: &str) -> Result<Option<Credential>, ApiError> {
        let Some(s) = self.store.get(&credential_key(node)).map_err(store_err)? else {
            return Ok(None);
        };
        let Object::Secret(sec) = stored_object(&s)? else {
            return Ok(None);
        };
        if sec.type_.as_deref() != Some(CREDENTIAL_TYPE) {
            return Ok(None);
        }
        Ok(Some(Credential {
            fingerprints: secret_field(&sec, "fingerprints")
                .unwrap_or_default()
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            not_after: secret_field(&sec, "not-after")
                .and_then(|t| parse_rfc3339(&t))
                .unwrap_or(0),
            revision: s.revision,
        }))
    }

    /// Why the certificate `der` presented for `node` must be refused, if it must. A node
    /// that joined before credentials were recorded (its record says [`LEGACY`]) has the
    /// first certificate it shows recorded as its own.
    pub async fn check_node_certificate(&self, node: &str, der: &[u8]) -> Option<String> {
        let Some(facts) = CertFacts::of_der(der) else {
            return Some("the certificate cannot be read".into());
        };
        let c = match self.credential(node) {
            Ok(c) => c,
            Err(e) => return Some(format!("the node's credential cannot be read: {e}")),
        };
        if let Some(c) = c.as_ref().filter(|c| c.fingerprints == [LEGACY]) {
            if facts.not_after > now() {
                if let Err(e) = self
                    .record_credential(node, &facts, None, Some(c.revision))
                    .await
                {
                    return Some(format!("the node's credential cannot be recorded: {e}"));
                }
                tracing::info!(node, "recorded the certificate of a node that joined before credentials were recorded");
                return None;
            }
        }
        credential_problem(
            node,
            c.as_ref().map(|c| c.fingerprints.as_slice()),
            &facts,
            now(),
        )
    }

    /// Once per store (an upgrade from a skiff that recorded no credentials): every Node
    /// without a record gets one that adopts the first certificate it shows. Nodes
    /// deleted or added later are never adopted: the marker says it was done.
    pub async fn adopt_legacy_nodes(&self) -> Result<(), ApiError> {
        // Beside the records (Secrets in kube-system, as bootstrap tokens are).
        let marker = ObjectKey {
            kind: Kind::Secret,
            namespace: "kube-system".into(),
            name: "skiff-node-credentials".into(),
        };
        if self.store.contains(&marker).map_err(store_err)? {
            return Ok(());
        }
        let (_, nodes) = self.store.list(Kind::Node, None).map_err(store_err)?;
        for n in nodes {
            let name = n.key.name.clone();
            if self.credential(&name)?.is_none() {
                let legacy = CertFacts {
                    fingerprint: LEGACY.into(),
                    not_before: now(),
                    not_after: now() + crate::pki::DEFAULT_NODE_CERT_TTL.as_secs(),
                };
                self.record_credential(&name, &legacy, None, None).await?;
            }
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": marker.name, "namespace": "kube-system"},
            "data": {"recorded-since": b64.encode(rfc3339(now()))},
        });
        match self.create(decode(&v.to_string())?).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Says on the Node (condition `CertificateExpired`) that it tried to connect with an
    /// expired certificate, and how to readmit it; written once per message.
    pub async fn note_certificate_expired(&self, node: &str, why: &str) {
        self.set_certificate_condition(node, "True", "CertificateExpired", why)
            .await
    }

    pub(super) async fn set_certificate_condition(
        &self,
        node: &str,
        status: &str,
        reason: &str,
        why: &str,
    ) {
        let key = ObjectKey {
            kind: Kind::Node,
            namespace: String::new(),
            name: node.to_string(),
        };
        let Ok(Some(s)) = self.store.get(&key) else {
            return;
        };
        let Ok(Object::Node(mut n)) = stored_object(&s) else {
            return;
        };
        let st = n.status.get_or_insert_with(Default::default);
        let had = st
            .conditions
            .iter()
            .any(|c| c.type_ == CERTIFICATE_CONDITION);
        if status == "False" && !had {
            return;
        }
        let changed = skiff_api::conditions::set_condition(
            &mut st.conditions,
            CERTIFICATE_CONDITION,
            status,
            reason,
            why,
            now(),
        );
        if changed {
            n.metadata.resource_version = Some(s.revision.to_string());
            if let Err(e) = self.update(Object::Node(n), true).await {
                tracing::debug!(node, error = %e, "certificate condition not written");
            }
        }
    }
    /// Records `cert` as the newest certificate of `node`; `keep` (the newest before it,
    /// which the node may still be connected with) stays valid beside it until it expires. `expected`: the record's revision read
    /// before (none: there must be none).
    pub(super) async fn record_credential(
        &self,
        node: &str,
        cert: &CertFacts,
        keep: Option<&str>,
        expected: Option<u64>,
    ) -> Result<(), ApiError> {
        let mut prints = vec![cert.fingerprint.clone()];
        prints.extend(keep.map(str::to_string));
        let b64 = base64::engine::general_purpose::STANDARD;
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": CREDENTIAL_TYPE,
            "metadata": {"name": credential_key(node).name, "namespace": "kube-system"},
            "data": {
                "node": b64.encode(node),
                "fingerprints": b64.encode(prints.join(",")),
                "not-after": b64.encode(rfc3339(cert.not_after)),
            },
        });
        let mut o = decode(&v.to_string())?;
        let op = match expected {
            None => {
                o.meta_mut().uid = Some(uid());
                o.meta_mut().creation_timestamp = Some(rfc3339(now()));
                WriteOp::Create(Put::from_object(&mut o).map_err(store_err)?)
            }
            Some(rev) => {
                let cur = self.current(&credential_key(node))?;
                let old = stored_object(&cur)?;
                o.meta_mut().uid = old.meta().uid.clone();
                o.meta_mut().creation_timestamp = old.meta().creation_timestamp.clone();
                WriteOp::Update {
                    put: Put::from_object(&mut o).map_err(store_err)?,
                    expected: Some(rev),
                }
            }
        };
        self.store.write(op).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) | StoreError::Conflict { .. } => err(
                ErrorCode::Conflict,
                format!("node {node:?} enrolled concurrently; try again"),
            ),
            e => store_err(e),
        })?;
        Ok(())
    }

    /// Revokes every certificate of `node` and closes its connection.
    pub(super) async fn revoke_credential(&self, node: &str) -> Result<(), ApiError> {
        match self
            .store
            .write(WriteOp::Delete {
                key: credential_key(node),
                expected: None,
            })
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(store_err(e)),
        }
        if let Some(conn) = self.nodes.link(node) {
            let why = format!(
                "the credential of node {node:?} was revoked (its Node was deleted); {}",
                readmit_hint(node)
            );
            conn.close(skiff_api::wire::CREDENTIAL_REFUSED.into(), why.as_bytes());
        }
        tracing::info!(node, "node credential revoked");
        Ok(())
    }

    /// A node renews its certificate over its session: the new one is recorded, the one
    /// it connected with stays valid beside it until it expires.
    /// Signs a node's CSR for `--node-cert-ttl`: the certificate (PEM) and its facts.
    pub(super) fn sign_node_certificate(
        &self,
        node: &str,
        csr: &str,
    ) -> Result<(String, CertFacts), ApiError> {
        let cert = self
            .pki
            .sign_node_csr(csr, node, self.pki.node_cert_ttl)
            .map_err(|e| {
                err(
                    ErrorCode::BadRequest,
                    format!("certificate signing request: {e}"),
                )
            })?;
        let facts = CertFacts::of_pem(&cert)
            .ok_or_else(|| err(ErrorCode::Internal, "the signed certificate cannot be read"))?;
        Ok((cert, facts))
    }

    pub(super) async fn renew(&self, id: &Identity, csr: &str) -> Result<Response, ApiError> {
        let Identity::Node(node) = id else {
            return Err(forbidden_verb(id, "renew a node certificate"));
        };
        let cred = self.credential(node)?.ok_or_else(|| {
            err(
                ErrorCode::Unauthorized,
                format!(
                    "the credential of node {node:?} was revoked; {}",
                    readmit_hint(node)
                ),
            )
        })?;
        let (cert, facts) = self.sign_node_certificate(node, csr)?;
        let before = cred.fingerprints.first().map(String::as_str);
        self.record_credential(node, &facts, before, Some(cred.revision))
            .await?;
        tracing::info!(node, expires = %rfc3339(facts.not_after), "node certificate renewed");
        Ok(Response::Joined {
            cert_pem: cert,
            ca_pem: self.pki.ca_pem.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(fp: &str, not_after: u64) -> CertFacts {
        CertFacts {
            fingerprint: fp.into(),
            not_before: 0,
            not_after,
        }
    }

    #[test]
    fn a_certificate_speaks_for_its_node_only_while_recorded_and_unexpired() {
        let prints = vec!["new".to_string(), "old".to_string()];
        let rec = prints.as_slice();
        assert_eq!(
            credential_problem("pi", Some(rec), &facts("new", 200), 100),
            None
        );
        assert_eq!(
            credential_problem("pi", Some(rec), &facts("old", 200), 100),
            None
        );
        let replaced = credential_problem("pi", Some(rec), &facts("other", 200), 100).unwrap();
        assert!(replaced.contains("replaced by a newer one"), "{replaced}");
        let revoked = credential_problem("pi", None, &facts("new", 200), 100).unwrap();
        assert!(revoked.contains("revoked"), "{revoked}");
        assert!(revoked.contains("skiff token create"), "{revoked}");
        let expired = credential_problem("pi", Some(rec), &facts("new", 100), 100).unwrap();
        assert!(
            expired.contains("expired at 1970-01-01T00:01:40Z"),
            "{expired}"
        );
    }
}
