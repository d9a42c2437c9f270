//! Registry credentials from Docker's config formats, as Kubernetes' image pull Secrets
//! carry them: `.dockerconfigjson` (`{"auths": {KEY: ENTRY}}`) and the older `.dockercfg`
//! (`{KEY: ENTRY}`). An entry has `username` and `password`, or `auth` (base64 of
//! `user:password`). A key names a registry as Docker writes it: a host with an optional
//! port and path (`registry.example:5000/team`), an optional `https://` in front, `*` as a
//! whole leftmost label (`*.example.com`), `https://index.docker.io/v1/` for Docker Hub.
//!
//! Matching follows the kubelet's keyring: the host must match label by label (same
//! number of labels; `*` matches one), the port must be equal, and the key's path must be
//! a prefix of the image's repository. The most specific key wins. Pure: no I/O.

use crate::registry::Credentials;
use base64::Engine as _;
use serde_json::Value;

/// Names Docker Hub goes by in keys; an image of `docker.io` matches any of them.
const DOCKER_HUB: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// One key of a config and its credentials.
#[derive(Clone, Debug)]
pub struct Entry {
    host: String,
    path: String,
    creds: Credentials,
}

/// The entries of a config: `legacy` for `.dockercfg`. Entries without usable
/// credentials are left out; a document that is not such a config is an error.
pub fn parse(json: &[u8], legacy: bool) -> Result<Vec<Entry>, String> {
    let v: Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let auths = if legacy { Some(&v) } else { v.get("auths") };
    let Some(Value::Object(auths)) = auths else {
        return Err(if legacy {
            "not a JSON object".into()
        } else {
            "no \"auths\" object".into()
        });
    };
    let mut out = Vec::new();
    for (key, entry) in auths {
        let Some(creds) = credentials(entry) else {
            continue;
        };
        let (host, path) = split_key(key);
        out.push(Entry { host, path, creds });
    }
    Ok(out)
}

fn credentials(entry: &Value) -> Option<Credentials> {
    let s = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let (Some(u), Some(p)) = (s("username"), s("password")) {
        return Some(Credentials {
            username: u.into(),
            password: p.into(),
        });
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s("auth")?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

/// A key's host (lowercase, with port) and path (no slashes around it).
fn split_key(key: &str) -> (String, String) {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    let host = host.to_ascii_lowercase();
    let mut path = path.trim_matches('/').to_string();
    // Docker Hub's classic key names its API version, not a repository.
    if DOCKER_HUB.contains(&host.as_str()) && path == "v1" {
        path.clear();
    }
    (host, path)
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let (p_name, p_port) = pattern.split_once(':').unwrap_or((pattern, ""));
    let (h_name, h_port) = host.split_once(':').unwrap_or((host, ""));
    if p_port != h_port {
        return false;
    }
    if DOCKER_HUB.contains(&p_name) && DOCKER_HUB.contains(&h_name) {
        return true;
    }
    let p: Vec<&str> = p_name.split('.').collect();
    let h: Vec<&str> = h_name.split('.').collect();
    p.len() == h.len() && p.iter().zip(&h).all(|(a, b)| *a == "*" || a == b)
}

fn path_matches(prefix: &str, repository: &str) -> bool {
    prefix.is_empty()
        || repository == prefix
        || repository
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The credentials for `repository` on `registry` (as [`crate::Reference`] names them):
/// the matching entry with the longest key, a literal host before a wildcard.
pub fn find<'a>(entries: &'a [Entry], registry: &str, repository: &str) -> Option<&'a Credentials> {
    let registry = registry.to_ascii_lowercase();
    entries
        .iter()
        .filter(|e| host_matches(&e.host, &registry) && path_matches(&e.path, repository))
        .max_by_key(|e| (e.path.len(), !e.host.contains('*'), e.host.len()))
        .map(|e| &e.creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn user(c: Option<&Credentials>) -> Option<&str> {
        c.map(|c| c.username.as_str())
    }

    #[test]
    fn both_formats_and_both_ways_of_writing_credentials() {
        let json = format!(
            r#"{{"auths": {{"registry.example:5000": {{"auth": "{}"}}, "https://index.docker.io/v1/": {{"username": "hub", "password": "p"}}, "empty.example": {{}}}}}}"#,
            b64("team:s3cret:with-colon")
        );
        let e = parse(json.as_bytes(), false).unwrap();
        assert_eq!(e.len(), 2, "the entry without credentials is left out");
        let c = find(&e, "registry.example:5000", "team/app").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("team", "s3cret:with-colon")
        );
        assert_eq!(user(find(&e, "docker.io", "library/busybox")), Some("hub"));
        let legacy = r#"{"quay.example": {"auth": "dTpw"}}"#;
        let e = parse(legacy.as_bytes(), true).unwrap();
        assert_eq!(user(find(&e, "quay.example", "x")), Some("u"));
        assert!(parse(b"{\"quay.example\": {}}", false).is_err());
        assert!(parse(b"[1]", true).is_err());
        assert!(parse(b"not json", false).is_err());
    }

    #[test]
    fn hosts_ports_wildcards_and_paths_match_as_the_kubelet_matches_them() {
        let json = format!(
            r#"{{"auths": {{
                "*.example.com": {{"auth": "{}"}},
                "reg.example.com/team": {{"auth": "{}"}},
                "reg.example.com": {{"auth": "{}"}},
                "local:5000": {{"auth": "{}"}}
            }}}}"#,
            b64("wild:p"),
            b64("team:p"),
            b64("host:p"),
            b64("local:p")
        );
        let e = parse(json.as_bytes(), false).unwrap();
        assert_eq!(user(find(&e, "reg.example.com", "team/app")), Some("team"));
        assert_eq!(
            user(find(&e, "reg.example.com", "teammate/app")),
            Some("host")
        );
        assert_eq!(user(find(&e, "other.example.com", "x")), Some("wild"));
        assert_eq!(
            user(find(&e, "a.b.example.com", "x")),
            None,
            "* is one label"
        );
        assert_eq!(user(find(&e, "local:5000", "x")), Some("local"));
        assert_eq!(
            user(find(&e, "local:5001", "x")),
            None,
            "ports must be equal"
        );
        assert_eq!(user(find(&e, "local", "x")), None);
        assert_eq!(user(find(&e, "docker.io", "library/busybox")), None);
    }
}
