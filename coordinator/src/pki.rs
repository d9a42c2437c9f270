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
    /// Serving certificate (PEM).
    pub server_cert_pem: String,
    /// Serving key (PEM).
    pub server_key_pem: String,
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

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
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
            validity(&mut params, 3650);
            let cert = params.self_signed(&key)?;
            write_private(&ca_key, &key.serialize_pem())?;
            write_private(&ca_crt, &cert.pem())?;
            (cert.pem(), key)
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)?;
        let ca_der = pem_to_der(&ca_pem).ok_or(rcgen::Error::CouldNotParseCertificate)?;

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "skiff-coordinator");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, 365);
        let server = params.signed_by(&server_key, &issuer)?;
        Ok(Pki {
            ca_pem,
            ca_der,
            issuer,
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
        })
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
        days: i64,
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, days);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a node's CSR. The subject is set here, never taken from the CSR: a node
    /// cannot ask for another identity.
    pub fn sign_node_csr(&self, csr_pem: &str, node: &str) -> Result<String, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("system:node:{node}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, 365);
        csr.params = params;
        Ok(csr.signed_by(&self.issuer)?.pem())
    }
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
        let (cert, _) = pki.issue_client("admin", "system:masters", 30).unwrap();
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
        let node = pki.sign_node_csr(&csr, "pi-1").unwrap();
        let der = skiff_transport::tls::certs_from_pem("n", &node)
            .unwrap()
            .remove(0);
        assert_eq!(Identity::from_cert(&der), Identity::Node("pi-1".into()));

        let again = Pki::load_or_create(&dir, &["localhost".into()]).unwrap();
        assert_eq!(again.ca_fingerprint(), pki.ca_fingerprint());
        std::fs::remove_dir_all(&dir).ok();
    }
}
