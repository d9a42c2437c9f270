//! The cluster's PKI: a CA created on first start (`<data-dir>/pki/`), a serving
//! certificate issued at every start for the current names and addresses, client
//! certificates for admins, and node certificates signed from CSRs.
//!
//! Identities live in the certificate subject, as in Kubernetes: `O=system:masters` is an
//! admin, `CN=system:node:<name>, O=system:nodes` is the node `<name>`.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// PKI failures.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Certificate generation or parsing failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
}

/// The CA and the serving certificate.
pub struct Pki {
    /// CA certificate (PEM).
    pub ca_pem: String,
    ca_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    /// Serving certificate and key (PEM), reissued before they expire.
    serving: std::sync::RwLock<Serving>,
    /// The names and addresses the serving certificate is for.
    sans: Vec<String>,
    /// How long the node certificates it signs live (`--node-cert-ttl`).
    pub node_cert_ttl: Duration,
    /// The key ServiceAccount tokens are signed with (`sa.key` beside the CA).
    pub tokens: crate::sa_token::Signer,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), PkiError> {
    skiff_transport::files::write_private(path, text.as_bytes()).map_err(io_err(path))
}

/// A day.
pub const DAY: Duration = Duration::from_secs(86_400);

/// How long node certificates live unless `--node-cert-ttl` says (Kubernetes' default
/// for kubelet client certificates); nodes renew theirs at 70–90 % of it.
pub const DEFAULT_NODE_CERT_TTL: Duration = Duration::from_secs(365 * 86_400);

/// Valid from a little before now (clocks differ: five minutes, or a tenth of a short
/// lifetime) until `ttl` from now.
fn validity(params: &mut CertificateParams, ttl: Duration) {
    let now = time::OffsetDateTime::now_utc();
    let back = (ttl / 10).min(Duration::from_secs(300));
    params.not_before = now - back;
    params.not_after = now + ttl;
}

impl Pki {
    /// Loads the CA from `dir` (creating it on first start) and issues a serving
    /// certificate for `sans` (DNS names and IP addresses).
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let ca_crt: PathBuf = dir.join("ca.crt");
        let ca_key: PathBuf = dir.join("ca.key");
        let (ca_pem, key) = if ca_crt.exists() && ca_key.exists() {
            let pem = std::fs::read_to_string(&ca_crt).map_err(io_err(&ca_crt))?;
            let key =
                KeyPair::from_pem(&std::fs::read_to_string(&ca_key).map_err(io_err(&ca_key))?)?;
            (pem, key)
        } else {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params
                .distinguished_name
                .push(DnType::CommonName, "skiff-ca");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            validity(&mut params, 3650 * DAY);
            let cert = params.self_signed(&key)?;
            write_private(&ca_key, &key.serialize_pem())?;
            write_private(&ca_crt, &cert.pem())?;
            (cert.pem(), key)
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)?;
        let ca_der = pem_to_der(&ca_pem).ok_or(rcgen::Error::CouldNotParseCertificate)?;

        let serving = issue_serving(&issuer, sans, DEFAULT_SERVING_CERT_TTL)?;
        let sa_key = dir.join("sa.key");
        let tokens =
            crate::sa_token::Signer::load_or_create(&sa_key).map_err(|e| PkiError::Io {
                path: sa_key.display().to_string(),
                source: std::io::Error::other(e),
            })?;
        Ok(Pki {
            tokens,
            ca_pem,
            ca_der,
            issuer,
            serving: std::sync::RwLock::new(serving),
            sans: sans.to_vec(),
            node_cert_ttl: DEFAULT_NODE_CERT_TTL,
        })
    }

    /// The serving certificate and key (PEM).
    pub fn serving(&self) -> (String, String) {
        let s = self.serving.read().unwrap();
        (s.cert_pem.clone(), s.key_pem.clone())
    }

    /// When the serving certificate should be reissued: at 80 % of its lifetime.
    pub fn serving_renew_at(&self) -> std::time::SystemTime {
        let s = self.serving.read().unwrap();
        s.not_before + (s.not_after.duration_since(s.not_before).unwrap_or_default()).mul_f64(0.8)
    }

    /// Issues a new serving certificate (new key) living `ttl`; the endpoint serves it
    /// once given a new server config (`server::server_config`).
    pub fn reissue_serving(&self, ttl: Duration) -> Result<std::time::SystemTime, PkiError> {
        let new = issue_serving(&self.issuer, &self.sans, ttl)?;
        let until = new.not_after;
        *self.serving.write().unwrap() = new;
        Ok(until)
    }

    /// SHA-256 of the CA certificate (hex), as join tokens carry it.
    pub fn ca_fingerprint(&self) -> String {
        skiff_transport::tls::fingerprint(&self.ca_der)
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// A new client certificate and key for `cn` in organisation `org`.
    pub fn issue_client(
        &self,
        cn: &str,
        org: &str,
        ttl: Duration,
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, ttl);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a node's CSR. The subject is set here, never taken from the CSR: a node
    /// cannot ask for another identity.
    pub fn sign_node_csr(
        &self,
        csr_pem: &str,
        node: &str,
        ttl: Duration,
    ) -> Result<String, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("system:node:{node}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, ttl);
        csr.params = params;
        Ok(csr.signed_by(&self.issuer)?.pem())
    }
}

/// How long a serving certificate lives unless `--serving-cert-ttl` says; it is reissued
/// at 80 % of that and at every start.
pub const DEFAULT_SERVING_CERT_TTL: Duration = Duration::from_secs(365 * 86_400);

/// A serving certificate and its key.
struct Serving {
    cert_pem: String,
    key_pem: String,
    not_before: std::time::SystemTime,
    not_after: std::time::SystemTime,
}

fn issue_serving(
    issuer: &Issuer<'static, KeyPair>,
    sans: &[String],
    ttl: Duration,
) -> Result<Serving, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "skiff-coordinator");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, ttl);
    let cert = params.signed_by(&key, issuer)?;
    Ok(Serving {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_before: params.not_before.into(),
        not_after: params.not_after.into(),
    })
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let certs = skiff_transport::tls::certs_from_pem("ca", pem).ok()?;
    certs.into_iter().next().map(|c| c.to_vec())
}

/// Who a client is, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `O=system:masters`.
    Admin(String),
    /// `CN=system:node:<name>, O=system:nodes`.
    Node(String),
    /// No certificate (may only join).
    Anonymous,
}

impl Identity {
    /// Reads the identity from a verified client certificate (DER).
    pub fn from_cert(der: &[u8]) -> Identity {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return Identity::Anonymous;
        };
        let subject = cert.subject();
        let cn = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("");
        let orgs: Vec<&str> = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .collect();
        if orgs.contains(&"system:masters") {
            return Identity::Admin(cn.to_string());
        }
        if orgs.contains(&"system:nodes") {
            if let Some(n) = cn.strip_prefix("system:node:") {
                return Identity::Node(n.to_string());
            }
        }
        Identity::Anonymous
    }

    /// How `whoami` names it.
    pub fn name(&self) -> String {
        match self {
            Identity::Admin(n) => format!("admin:{n}"),
            Identity::Node(n) => format!("node:{n}"),
            Identity::Anonymous => "anonymous".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_and_persistence() {
        let dir = std::env::temp_dir().join(format!("skiff-pki-{}", std::process::id()));
        let pki = Pki::load_or_create(&dir, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let (cert, _) = pki
            .issue_client("admin", "system:masters", 30 * DAY)
            .unwrap();
        let der = skiff_transport::tls::certs_from_pem("c", &cert)
            .unwrap()
            .remove(0);
        assert_eq!(Identity::from_cert(&der), Identity::Admin("admin".into()));

        // A CSR asking to be an admin still yields a node identity.
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        let csr = p.serialize_request(&key).unwrap().pem().unwrap();
        let node = pki.sign_node_csr(&csr, "pi-1", DAY).unwrap();
        let der = skiff_transport::tls::certs_from_pem("n", &node)
            .unwrap()
            .remove(0);
        assert_eq!(Identity::from_cert(&der), Identity::Node("pi-1".into()));

        let again = Pki::load_or_create(&dir, &["localhost".into()]).unwrap();
        assert_eq!(again.ca_fingerprint(), pki.ca_fingerprint());
        std::fs::remove_dir_all(&dir).ok();
    }
}
