//! The client config file (`~/.skiff/config`, `<data-dir>/admin.config`): where the
//! coordinator is, the CA to trust, and the client's certificate and key.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A client config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConfig {
    /// `skiff/v1`.
    pub api_version: String,
    /// `Config`.
    pub kind: String,
    /// `host:port` of the coordinator.
    pub server: String,
    /// Name to verify the server certificate against (default: the host of `server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM of the cluster CA.
    pub certificate_authority: String,
    /// PEM of the client certificate.
    pub client_certificate: String,
    /// PEM of the client key.
    pub client_key: String,
}

/// Config file failures.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No config was found.
    #[error("no client config: pass --config FILE, set SKIFF_CONFIG, or copy <coordinator data-dir>/admin.config to ~/.skiff/config")]
    Missing,
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid config.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl ClientConfig {
    /// A config for `server` with these credentials.
    pub fn new(server: String, ca: String, cert: String, key: String) -> Self {
        ClientConfig {
            api_version: "skiff/v1".into(),
            kind: "Config".into(),
            server,
            server_name: None,
            certificate_authority: ca,
            client_certificate: cert,
            client_key: key,
        }
    }

    /// Reads a config file (YAML or JSON).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: p.clone(),
            message,
        };
        let docs = skiff_api::yaml::parse_documents(&text).map_err(|e| invalid(e.to_string()))?;
        let doc = docs
            .into_iter()
            .next()
            .ok_or_else(|| invalid("empty file".into()))?;
        let cfg: ClientConfig =
            serde_json::from_value(doc.value).map_err(|e| invalid(e.to_string()))?;
        if cfg.kind != "Config" {
            return Err(invalid(format!("kind is {:?}, want \"Config\"", cfg.kind)));
        }
        Ok(cfg)
    }

    /// Finds the config: `--config`, then `SKIFF_CONFIG`, then `~/.skiff/config`.
    pub fn discover(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(p) = explicit {
            return Self::load(p);
        }
        if let Some(p) = std::env::var_os("SKIFF_CONFIG").filter(|p| !p.is_empty()) {
            return Self::load(Path::new(&p));
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .ok_or(ConfigError::Missing)?;
        let p = home.join(".skiff").join("config");
        if p.exists() {
            Self::load(&p)
        } else {
            Err(ConfigError::Missing)
        }
    }

    /// When the client certificate became valid and when it expires (unix seconds).
    pub fn certificate_validity(&self) -> Option<(u64, u64)> {
        let der = crate::tls::certs_from_pem("client", &self.client_certificate).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der.first()?).ok()?;
        let v = cert.validity();
        Some((
            u64::try_from(v.not_before.timestamp()).ok()?,
            u64::try_from(v.not_after.timestamp()).ok()?,
        ))
    }

    /// The same credentials as a kubeconfig, for kubectl and Kubernetes' client libraries:
    /// the Kubernetes API over HTTPS on the same address (TCP beside QUIC's UDP).
    pub fn kubeconfig(&self) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let mut cluster = serde_json::json!({
            "server": format!("https://{}", self.server),
            "certificate-authority-data": b64(&self.certificate_authority),
        });
        if let Some(name) = &self.server_name {
            cluster["tls-server-name"] = name.clone().into();
        }
        let v = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "skiff", "cluster": cluster}],
            "users": [{"name": "skiff", "user": {
                "client-certificate-data": b64(&self.client_certificate),
                "client-key-data": b64(&self.client_key),
            }}],
            "contexts": [{"name": "skiff", "context": {"cluster": "skiff", "user": "skiff"}}],
            "current-context": "skiff",
        });
        skiff_api::yaml::to_yaml(&v)
    }

    /// Writes the config as YAML with mode 0600.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let v = serde_json::to_value(self).expect("configs serialize");
        crate::files::write_private(path, skiff_api::yaml::to_yaml(&v).as_bytes())
    }
}
