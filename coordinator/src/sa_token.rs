//! ServiceAccount tokens, as Kubernetes' bound tokens: JWTs signed ES256 by a key the
//! coordinator creates on first start (`<data-dir>/pki/sa.key`, beside the CA), naming the
//! account (`sub: system:serviceaccount:<ns>:<name>`), the audiences, an expiry, and the
//! pod they are bound to. [`Signer::verify`] checks signature, issuer, audience and time;
//! the caller checks that the bound pod still exists.

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The issuer, and the audience the API accepts unless a token names another (as
/// Kubernetes' default `--service-account-issuer` and `--api-audiences`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The shortest and longest lives a token request may ask for (Kubernetes' minimum, and
/// its default maximum for bound tokens).
pub const MIN_EXPIRATION: i64 = 600;
pub const MAX_EXPIRATION: i64 = 48 * 3600;

/// Clock skew a token's times allow.
const LEEWAY: u64 = 60;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "not base64url".to_string())
}

/// A named object and its uid, as the `kubernetes.io` claim holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeClaim {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

/// A token's claims.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub iss: String,
    pub jti: String,
    pub sub: String,
    #[serde(rename = "kubernetes.io")]
    pub kube: KubeClaim,
}

impl Claims {
    /// The user name Kubernetes gives the account.
    pub fn user(&self) -> String {
        self.sub.clone()
    }
}

/// What a token is for: the account, the pod and node it is bound to, its audiences and
/// life.
pub struct Grant<'a> {
    pub namespace: &'a str,
    pub account: Ref,
    pub pod: Option<Ref>,
    pub node: Option<Ref>,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
}

/// The signing key.
pub struct Signer {
    key: EcdsaKeyPair,
    /// The key id: a hash of the public key.
    kid: String,
}

impl Signer {
    /// Loads the key from `path` (PKCS#8), creating it (0600) on first start.
    pub fn load_or_create(path: &Path) -> Result<Signer, String> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let der = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng)
                    .map_err(|_| "generating the ServiceAccount signing key".to_string())?;
                skiff_transport::files::write_private(path, doc.as_ref())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let key = EcdsaKeyPair::from_pkcs8(alg, &der, &rng)
            .map_err(|e| format!("{}: not an ECDSA P-256 key: {e}", path.display()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let kid = b64(&digest.as_ref()[..16]);
        Ok(Signer { key, kid })
    }

    /// Issues a token for `g`, from `now` (seconds since the epoch); `jti` makes it unique.
    pub fn issue(&self, g: &Grant<'_>, now: u64, jti: &str) -> Result<(String, u64), String> {
        let exp = now + g.expiration_seconds.clamp(MIN_EXPIRATION, MAX_EXPIRATION) as u64;
        let claims = Claims {
            aud: g.audiences.clone(),
            exp,
            iat: now,
            nbf: now,
            iss: ISSUER.into(),
            jti: jti.into(),
            sub: format!("system:serviceaccount:{}:{}", g.namespace, g.account.name),
            kube: KubeClaim {
                namespace: g.namespace.into(),
                serviceaccount: g.account.clone(),
                pod: g.pod.clone(),
                node: g.node.clone(),
            },
        };
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid});
        let payload = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(&payload));
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| "signing the token".to_string())?;
        Ok((format!("{signing_input}.{}", b64(sig.as_ref())), exp))
    }

    /// The claims of a token this key signed, for `audience`, valid at `now`. Tokens
    /// longer than 8 KiB are refused before anything is decoded.
    pub fn verify(&self, token: &str, audience: &str, now: u64) -> Result<Claims, String> {
        if token.len() > 8192 {
            return Err("token too long".into());
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let header: serde_json::Value =
            serde_json::from_slice(&unb64(h)?).map_err(|_| "a malformed header".to_string())?;
        if header["alg"] != "ES256" {
            return Err("an unexpected signing algorithm".into());
        }
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        );
        public
            .verify(format!("{h}.{p}").as_bytes(), &unb64(s)?)
            .map_err(|_| "a signature this cluster did not make".to_string())?;
        let c: Claims =
            serde_json::from_slice(&unb64(p)?).map_err(|_| "malformed claims".to_string())?;
        if c.iss != ISSUER {
            return Err(format!("issuer {:?} is not this cluster's", c.iss));
        }
        if !c.aud.iter().any(|a| a == audience) {
            return Err(format!(
                "not for audience {audience:?} (it is for {:?})",
                c.aud
            ));
        }
        if now >= c.exp + LEEWAY {
            return Err("expired".into());
        }
        if now + LEEWAY < c.nbf {
            return Err("not valid yet".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(aud: &str) -> Grant<'static> {
        Grant {
            namespace: "apps",
            account: Ref {
                name: "robot".into(),
                uid: "sa-1".into(),
            },
            pod: Some(Ref {
                name: "p".into(),
                uid: "pod-1".into(),
            }),
            node: None,
            audiences: vec![aud.into()],
            expiration_seconds: 3600,
        }
    }

    #[test]
    fn tokens_verify_only_for_their_audience_key_and_time() {
        let dir = std::env::temp_dir().join(format!("sa-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sa.key");
        let _ = std::fs::remove_file(&path);
        let signer = Signer::load_or_create(&path).unwrap();
        let (t, exp) = signer.issue(&grant(ISSUER), 1_000, "j1").unwrap();
        assert_eq!(exp, 4_600);
        let c = signer.verify(&t, ISSUER, 1_001).unwrap();
        assert_eq!(c.sub, "system:serviceaccount:apps:robot");
        assert_eq!(c.kube.pod.unwrap().uid, "pod-1");
        // The same key is read back at the next start.
        let again = Signer::load_or_create(&path).unwrap();
        assert!(again.verify(&t, ISSUER, 1_001).is_ok());
        // Another audience, past expiry, a changed payload, another key: refused.
        assert!(signer
            .verify(&t, "vault", 1_001)
            .unwrap_err()
            .contains("audience"));
        assert_eq!(
            signer.verify(&t, ISSUER, 4_600 + LEEWAY).unwrap_err(),
            "expired"
        );
        let parts: Vec<&str> = t.split('.').collect();
        let forged = {
            let mut c: serde_json::Value =
                serde_json::from_slice(&unb64(parts[1]).unwrap()).unwrap();
            c["sub"] = "system:serviceaccount:kube-system:admin".into();
            format!(
                "{}.{}.{}",
                parts[0],
                b64(c.to_string().as_bytes()),
                parts[2]
            )
        };
        assert!(signer
            .verify(&forged, ISSUER, 1_001)
            .unwrap_err()
            .contains("signature"));
        let _ = std::fs::remove_file(&path);
        let other = Signer::load_or_create(&path).unwrap();
        assert!(other
            .verify(&t, ISSUER, 1_001)
            .unwrap_err()
            .contains("signature"));
        // Lives are held to Kubernetes' bounds.
        let mut short = grant(ISSUER);
        short.expiration_seconds = 60;
        assert_eq!(
            signer.issue(&short, 0, "j2").unwrap().1,
            MIN_EXPIRATION as u64
        );
        assert!(signer.verify("a.b", ISSUER, 0).is_err());
        assert!(signer.verify(&"x".repeat(9000), ISSUER, 0).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
