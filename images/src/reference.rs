//! Image references, normalized the way Docker does it: `busybox:1.36` is
//! `docker.io/library/busybox:1.36`, `localhost:5000/app` is `localhost:5000/app:latest`.

use std::fmt;

use crate::digest::Digest;

/// The registry a name without a registry part refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalized image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    /// Tag; `latest` when the reference names neither tag nor digest.
    pub tag: Option<String>,
    /// Digest, for `name@sha256:...` references.
    pub digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct InvalidReference {
    /// What was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Reference {
    /// Parses and normalizes a reference.
    pub fn parse(input: &str) -> Result<Reference, InvalidReference> {
        let bad = |reason| InvalidReference {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() || input.len() > 512 {
            return Err(bad("empty or longer than 512 characters"));
        }
        let (name, digest) = match input.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|_| bad("digest must be sha256:<64 hex digits>"))?),
            ),
            None => (input, None),
        };
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes().enumerate().all(|(i, b)| {
                    b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
                });
            if !ok {
                return Err(bad("tag must be [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if registry.bytes().any(|b| {
            !(b.is_ascii_alphanumeric()
                || b == b'.'
                || b == b'-'
                || b == b':'
                || b == b'['
                || b == b']')
        }) {
            return Err(bad("registry host has invalid characters"));
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if repository.is_empty() {
            return Err(bad("repository name is empty"));
        }
        for component in repository.split('/') {
            if !valid_component(component) {
                return Err(bad(
                    "repository components must be lowercase letters, digits and single separators (. _ __ -)",
                ));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints: `busybox:1.36` for `docker.io/library/busybox:1.36`.
    pub fn familiar(&self) -> String {
        let full = self.to_string();
        full.strip_prefix("docker.io/library/")
            .or_else(|| full.strip_prefix("docker.io/"))
            .map(str::to_string)
            .unwrap_or(full)
    }

    /// The tag or digest to ask the registry for.
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_normalization() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox:1.36", "docker.io/library/busybox:1.36"),
            (
                "docker.io/library/busybox:1.36",
                "docker.io/library/busybox:1.36",
            ),
            (
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
            ),
            (
                "rancher/k3s:v1.30.0-k3s1",
                "docker.io/rancher/k3s:v1.30.0-k3s1",
            ),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("localhost/app:v1", "localhost/app:v1"),
            ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t"),
            ("ghcr.io/org/img_x__y-z.w:1", "ghcr.io/org/img_x__y-z.w:1"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Reference::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.object(), d);
        assert_eq!(
            Reference::parse("busybox:1.36").unwrap().familiar(),
            "busybox:1.36"
        );
        assert_eq!(
            Reference::parse("rancher/k3s").unwrap().familiar(),
            "rancher/k3s:latest"
        );
        assert_eq!(
            Reference::parse("localhost:5000/app").unwrap().familiar(),
            "localhost:5000/app:latest"
        );
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "a/-b",
            "a@sha256:12",
            "a..b",
            "x:5000/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
