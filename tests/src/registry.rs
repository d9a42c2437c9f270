//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on loopback,
//! optionally with TLS from a test CA, htpasswd (basic) auth, or bearer tokens from a small
//! token server here that signs ES256 JWTs the registry verifies against its certificate.
//! Images get in with `skopeo copy` from OCI layouts the tests build.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::{free_tcp_port, TempDir};

pub const USER: &str = "skiff";
pub const PASSWORD: &str = "s3cret-pass";

/// How the registry authenticates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Auth {
    Anonymous,
    Basic,
    Token,
}

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    pub tls: bool,
    pub auth: Auth,
    pub dir: TempDir,
    token_server: Option<std::thread::JoinHandle<()>>,
    /// The network namespace it serves in (the host's when `None`).
    netns: Option<String>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Registry {
    /// Starts a registry. With `tls`, its certificate comes from a CA at [`Registry::ca`].
    pub fn start(auth: Auth, tls: bool) -> Registry {
        Registry::start_in(auth, tls, None, free_tcp_port())
    }

    /// [`Registry::start`] in the network namespace `netns` (a test cluster's, where its
    /// agent pulls), on `port` of its loopback. Token auth serves only in the host's.
    pub fn start_in(auth: Auth, tls: bool, netns: Option<&str>, port: u16) -> Registry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "docker-registry is missing: scripts/deps installs it"
        );
        assert!(
            netns.is_none() || auth != Auth::Token,
            "the token server listens in the host's namespace"
        );
        let dir = TempDir::new("registry");
        let host = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}/data\nhttp:\n  addr: {host}\n",
            dir.path().display()
        );
        if tls {
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "skiff test registry CA");
            let ca = p.self_signed(&ca_key).unwrap();
            let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.pem(), ca_key).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let mut sp = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            sp.subject_alt_names
                .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
            let cert = sp.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
            std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
            std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
            // skopeo reads a directory of CAs named *.crt.
            std::fs::create_dir_all(dir.path().join("certs.d")).unwrap();
            std::fs::write(dir.path().join("certs.d/ca.crt"), ca.pem()).unwrap();
            cfg.push_str(&format!(
                "  tls:\n    certificate: {0}/server.pem\n    key: {0}/server.key\n",
                dir.path().display()
            ));
        }
        let mut token_server = None;
        match auth {
            Auth::Anonymous => {}
            Auth::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .expect("htpasswd (apache2-utils)");
                assert!(out.status.success());
                std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
                cfg.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}/htpasswd\n",
                    dir.path().display()
                ));
            }
            Auth::Token => {
                let key = rcgen::KeyPair::generate().unwrap();
                let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
                p.distinguished_name
                    .push(rcgen::DnType::CommonName, "skiff test token issuer");
                let cert = p.self_signed(&key).unwrap();
                std::fs::write(dir.path().join("token.pem"), cert.pem()).unwrap();
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let realm = format!("http://{}/token", listener.local_addr().unwrap());
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: skiff-registry\n    issuer: skiff-test-issuer\n    rootcertbundle: {}/token.pem\n",
                    dir.path().display()
                ));
                let der = cert.der().to_vec();
                let pkcs8 = key.serialize_der();
                token_server = Some(std::thread::spawn(move || {
                    serve_tokens(listener, der, pkcs8)
                }));
            }
        }
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let child = crate::command_in(netns, "docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("start docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        let up = || match netns {
            None => std::net::TcpStream::connect(&host).is_ok(),
            Some(_) => crate::command_in(netns, "bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        };
        while !up() {
            assert!(
                Instant::now() < deadline,
                "registry did not start: {}",
                std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            host,
            tls,
            auth,
            dir,
            token_server,
            netns: netns.map(String::from),
        }
    }

    /// The CA that signed the registry's certificate (TLS registries).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Pushes an OCI layout's image as `<host>/<name>` with skopeo (all platforms).
    pub fn push(&self, layout: &Path, tag_in_layout: &str, name: &str) {
        let mut cmd = crate::command_in(self.netns.as_deref(), "skopeo");
        cmd.args(["--insecure-policy", "copy", "--all", "--quiet"]);
        if self.tls {
            cmd.arg("--dest-cert-dir")
                .arg(self.dir.path().join("certs.d"));
        } else {
            cmd.arg("--dest-tls-verify=false");
        }
        if self.auth != Auth::Anonymous {
            cmd.arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        }
        cmd.arg(format!("oci:{}:{tag_in_layout}", layout.display()))
            .arg(format!("docker://{}/{name}", self.host));
        let out = cmd.output().expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}\nregistry log: {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// A registries file for the agent: `auth` credentials, CA and insecure flag for this host.
    pub fn registries_yaml(
        &self,
        creds: Option<(&str, &str)>,
        with_ca: bool,
        insecure: bool,
    ) -> String {
        let mut s = format!("configs:\n  \"{}\":\n", self.host);
        if let Some((u, p)) = creds {
            s.push_str(&format!(
                "    auth:\n      username: {u}\n      password: {p}\n"
            ));
        }
        if with_ca {
            s.push_str(&format!(
                "    tls:\n      ca_file: {}\n",
                self.ca().display()
            ));
        }
        s.push_str(&format!("    insecure: {insecure}\n"));
        s
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.token_server.take());
    }
}

/// The token endpoint: checks basic credentials and signs a JWT granting what was asked.
fn serve_tokens(listener: TcpListener, cert_der: Vec<u8>, pkcs8: Vec<u8>) {
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &rng,
    )
    .unwrap();
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        let mut authorized = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") && v.trim() == want {
                    authorized = true;
                }
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut access = Vec::new();
        for pair in query.split('&') {
            if let Some(scope) = pair.strip_prefix("scope=") {
                let scope = scope
                    .replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ",");
                let parts: Vec<&str> = scope.split(':').collect();
                if parts.len() == 3 {
                    access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                }
            }
        }
        if !authorized {
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert_der)]});
        let claims = serde_json::json!({
            "iss": "skiff-test-issuer", "sub": USER, "aud": "skiff-registry",
            "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", access.len()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = key.sign(&rng, signing_input.as_bytes()).unwrap();
        let token = format!("{signing_input}.{}", b64url(sig.as_ref()));
        let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
            .to_string();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
