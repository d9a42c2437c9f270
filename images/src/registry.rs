//! Pulling from OCI distribution registries.
//!
//! Anonymous, basic and bearer-token auth (the `WWW-Authenticate` challenge decides); HTTPS
//! with the system roots plus a configured CA per registry; plain HTTP only for registries
//! marked insecure. Manifest lists resolve to the node's platform, blobs already present are
//! not fetched again, layers are fetched concurrently, and every byte is verified against its
//! digest before it is stored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{self, TryStreamExt};
use serde::Deserialize;

use crate::digest::Digest;
use crate::oci::{self, Descriptor};
use crate::reference::Reference;
use crate::store::{ImageError, ImageRecord, ImageStore};

/// Manifests larger than this are refused before reading them.
const MAX_MANIFEST: u64 = 4 << 20;
/// Layers fetched at once (Docker's default).
const CONCURRENT_LAYERS: usize = 3;

/// Per-registry settings, keyed by host (`localhost:5000`, `docker.io`): the `configs`
/// section of the agent's registries file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default)]
    pub configs: BTreeMap<String, HostConfig>,
}

/// One registry's settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub auth: Option<Credentials>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Plain HTTP. Only for registries you trust the network path to.
    #[serde(default)]
    pub insecure: bool,
}

/// Registry credentials.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

/// Extra trust for a registry's certificate.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file of CA certificates trusted for this registry, besides the system's.
    pub ca_file: Option<PathBuf>,
}

/// Pull progress, for the CLI's bars and for pod events.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// The manifest is known: these layers (digest, size) will be needed.
    Resolved {
        manifest: Digest,
        layers: Vec<(Digest, u64)>,
    },
    /// Bytes of one layer so far.
    Layer {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// A layer is stored (`cached`: it was already present).
    LayerDone { digest: Digest, cached: bool },
}

type Reporter<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// A registry client for one pull.
struct Session<'a> {
    http: reqwest::Client,
    base: String,
    repository: String,
    host: String,
    creds: Option<Credentials>,
    /// The Authorization header that worked last (bearer tokens are per scope, so per pull).
    auth: Mutex<Option<String>>,
    store: &'a ImageStore,
}

impl RegistryConfig {
    /// This configuration with `creds` for `host` (a pod's pull Secret), its TLS and
    /// `insecure` settings kept.
    pub fn with_auth(&self, host: &str, creds: Credentials) -> RegistryConfig {
        let mut c = self.clone();
        c.configs.entry(host.to_string()).or_default().auth = Some(creds);
        c
    }

    fn host(&self, host: &str) -> HostConfig {
        self.configs.get(host).cloned().unwrap_or_default()
    }
}

fn registry_err(msg: impl Into<String>) -> ImageError {
    ImageError::Registry(msg.into())
}

fn http_client(host: &HostConfig) -> Result<reqwest::Client, ImageError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = host.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
        let pem = std::fs::read(ca)
            .map_err(|e| registry_err(format!("reading CA file {}: {e}", ca.display())))?;
        let mut n = 0;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| registry_err(format!("CA file {}: {e}", ca.display())))?;
            roots
                .add(cert)
                .map_err(|e| registry_err(format!("CA file {}: {e}", ca.display())))?;
            n += 1;
        }
        if n == 0 {
            return Err(registry_err(format!(
                "CA file {} holds no certificate",
                ca.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| registry_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| registry_err(format!("HTTP client: {e}")))
}

/// The `WWW-Authenticate` challenge of a 401.
#[derive(Debug, PartialEq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        params: Vec<(String, String)>,
    },
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (quoted[..end].to_string(), &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((key, value));
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    let realm = params.iter().find(|(k, _)| k == "realm")?.1.clone();
    params.retain(|(k, _)| k != "realm");
    Some(Challenge::Bearer { realm, params })
}

impl<'a> Session<'a> {
    async fn get(&self, url: &str, accept: Option<&str>) -> Result<reqwest::Response, ImageError> {
        let mut retried = false;
        loop {
            let mut req = self.http.get(url);
            if let Some(a) = accept {
                req = req.header(reqwest::header::ACCEPT, a);
            }
            let auth = self.auth.lock().unwrap().clone();
            if let Some(a) = &auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| registry_err(format!("GET {url}: {}", error_chain(&e))))?;
            if resp.status() != reqwest::StatusCode::UNAUTHORIZED || retried {
                if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                    return Err(registry_err(format!(
                        "{}: unauthorized{}",
                        self.host,
                        if self.creds.is_some() {
                            " (check the credentials in the registries file)"
                        } else {
                            "; this registry needs credentials; add them to the registries file"
                        }
                    )));
                }
                return Ok(resp);
            }
            retried = true;
            let challenge = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge)
                .ok_or_else(|| {
                    registry_err(format!(
                        "{}: 401 without a usable WWW-Authenticate challenge",
                        self.host
                    ))
                })?;
            let header = match challenge {
                Challenge::Basic => {
                    let c = self.creds.as_ref().ok_or_else(|| {
                        registry_err(format!(
                            "{}: this registry needs credentials; add them to the registries file",
                            self.host
                        ))
                    })?;
                    basic(c)
                }
                Challenge::Bearer { realm, params } => {
                    format!("Bearer {}", self.token(&realm, params).await?)
                }
            };
            *self.auth.lock().unwrap() = Some(header);
        }
    }

    async fn token(
        &self,
        realm: &str,
        mut params: Vec<(String, String)>,
    ) -> Result<String, ImageError> {
        if !params.iter().any(|(k, _)| k == "scope") {
            params.push((
                "scope".into(),
                format!("repository:{}:pull", self.repository),
            ));
        }
        let mut req = self.http.get(realm).query(&params);
        if let Some(c) = &self.creds {
            req = req.header(reqwest::header::AUTHORIZATION, basic(c));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| registry_err(format!("token from {realm}: {}", error_chain(&e))))?;
        if !resp.status().is_success() {
            return Err(registry_err(format!(
                "token from {realm}: {}",
                resp.status()
            )));
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = limited_body(resp, 1 << 20).await?;
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| registry_err(format!("token from {realm}: {e}")))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| registry_err(format!("token from {realm}: no token in the answer")))
    }

    /// Fetches a manifest or index by tag or digest, stores it, and returns its descriptor.
    async fn manifest(
        &self,
        object: &str,
        expected: Option<&Digest>,
    ) -> Result<Descriptor, ImageError> {
        let url = format!("{}/v2/{}/manifests/{}", self.base, self.repository, object);
        let resp = self
            .get(&url, Some(&oci::MANIFEST_TYPES.join(", ")))
            .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ImageError::NotFound(format!(
                "{}/{}:{object}",
                self.host, self.repository
            )));
        }
        if !status.is_success() {
            return Err(registry_err(format!("GET {url}: {status}")));
        }
        let media = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let body = limited_body(resp, MAX_MANIFEST).await?;
        let digest = Digest::of(&body);
        if let Some(want) = expected {
            if *want != digest {
                return Err(registry_err(format!(
                    "manifest {object}: registry sent {digest}"
                )));
            }
        }
        let media_type = oci::sniff_media_type(&body)
            .or(media)
            .unwrap_or_else(|| oci::OCI_MANIFEST.to_string());
        self.store.content().write_bytes(&body)?;
        Ok(Descriptor {
            media_type,
            size: body.len() as u64,
            digest,
            platform: None,
            annotations: Default::default(),
        })
    }

    /// Streams a blob into the content store, verifying digest and size.
    async fn blob(
        &self,
        desc: &Descriptor,
        report: Reporter<'_>,
        is_layer: bool,
    ) -> Result<(), ImageError> {
        if self.store.content().has(&desc.digest) {
            if is_layer {
                report(Progress::LayerDone {
                    digest: desc.digest.clone(),
                    cached: true,
                });
            }
            return Ok(());
        }
        let url = format!("{}/v2/{}/blobs/{}", self.base, self.repository, desc.digest);
        let mut resp = self.get(&url, None).await?;
        if !resp.status().is_success() {
            return Err(registry_err(format!("GET {url}: {}", resp.status())));
        }
        let mut ingest = self.store.content().writer()?;
        let mut done = 0u64;
        let mut last_report = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| registry_err(format!("reading {}: {}", desc.digest, error_chain(&e))))?
        {
            done += chunk.len() as u64;
            if done > desc.size {
                return Err(registry_err(format!(
                    "blob {} is larger than the {} bytes its descriptor says",
                    desc.digest, desc.size
                )));
            }
            ingest
                .write_all(&chunk)
                .map_err(|e| registry_err(format!("storing {}: {e}", desc.digest)))?;
            if is_layer && (done - last_report >= 256 * 1024 || done == desc.size) {
                last_report = done;
                report(Progress::Layer {
                    digest: desc.digest.clone(),
                    done,
                    total: desc.size,
                });
            }
        }
        self.store
            .content()
            .commit(ingest, Some((&desc.digest, Some(desc.size))))?;
        if is_layer {
            report(Progress::LayerDone {
                digest: desc.digest.clone(),
                cached: false,
            });
        }
        Ok(())
    }
}

fn basic(c: &Credentials) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

async fn limited_body(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, ImageError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(registry_err(format!(
            "{}: response larger than {limit} bytes",
            resp.url()
        )));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| registry_err(format!("{}: {}", resp.url(), error_chain(&e))))?
    {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(registry_err(format!(
                "{}: response larger than {limit} bytes",
                resp.url()
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

impl ImageStore {
    /// Pulls `reference` (Docker's short names work) and names it. Progress goes to `report`.
    pub async fn pull(
        &self,
        reference: &str,
        registries: &RegistryConfig,
        report: Reporter<'_>,
    ) -> Result<ImageRecord, ImageError> {
        let r = Reference::parse(reference)?;
        let host_cfg = registries.host(&r.registry);
        let endpoint = if r.registry == crate::reference::DEFAULT_REGISTRY {
            "registry-1.docker.io".to_string()
        } else {
            r.registry.clone()
        };
        let scheme = if host_cfg.insecure { "http" } else { "https" };
        let session = Session {
            http: http_client(&host_cfg)?,
            base: format!("{scheme}://{endpoint}"),
            repository: r.repository.clone(),
            host: r.registry.clone(),
            creds: host_cfg.auth.clone(),
            auth: Mutex::new(None),
            store: self,
        };
        let top = session.manifest(&r.object(), r.digest.as_ref()).await?;
        // Index documents are small and fetched in turn; the platform manifest's blobs after.
        let mut desc = top;
        for _ in 0..4 {
            if !oci::is_index(&desc.media_type) {
                break;
            }
            let chosen = self.select_platform(&desc.digest)?;
            desc = session
                .manifest(&chosen.digest.to_string(), Some(&chosen.digest))
                .await?;
        }
        let manifest = self.read_manifest(&desc.digest)?;
        report(Progress::Resolved {
            manifest: desc.digest.clone(),
            layers: manifest
                .layers
                .iter()
                .map(|l| (l.digest.clone(), l.size))
                .collect(),
        });
        session.blob(&manifest.config, report, false).await?;
        stream::iter(manifest.layers.iter().map(Ok::<_, ImageError>))
            .try_for_each_concurrent(CONCURRENT_LAYERS, |l| session.blob(l, report, true))
            .await?;
        // Named by tag (a digest given with it is dropped from the name), or `repo@digest`
        // when pulled by digest only, as Docker lists them.
        let name = match r.tag {
            Some(_) => Reference { digest: None, ..r },
            None => r,
        };
        self.register(Some(&name), &desc.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"Registry\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                params: vec![
                    ("service".into(), "registry.docker.io".into()),
                    ("scope".into(), "repository:library/busybox:pull".into())
                ],
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
    }

    #[test]
    fn registries_file_refuses_unknown_fields() {
        let ok: RegistryConfig = serde_json::from_value(serde_json::json!({
            "configs": {"localhost:5000": {"auth": {"username": "u", "password": "p"}, "insecure": true}}
        }))
        .unwrap();
        assert!(ok.host("localhost:5000").insecure);
        assert!(format!("{:?}", ok).contains("<hidden>"));
        let err = serde_json::from_value::<RegistryConfig>(serde_json::json!({
            "configs": {"x": {"insecure_skip_verify": true}}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
