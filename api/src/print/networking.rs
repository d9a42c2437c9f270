//! Ingresses.

use super::{age, or_none, table, Page, Print};
use crate::networking::{Ingress, IngressBackend};

/// An Ingress's class: `spec.ingressClassName`, else the older annotation, else `<none>`.
pub fn ingress_class(i: &Ingress) -> &str {
    match i.spec.ingress_class_name.as_deref().unwrap_or("") {
        "" => match i
            .metadata
            .annotations
            .get("kubernetes.io/ingress.class")
            .map(String::as_str)
            .unwrap_or("")
        {
            "" => "<none>",
            c => c,
        },
        c => c,
    }
}

fn backend(b: &IngressBackend) -> String {
    let Some(svc) = &b.service else {
        return ":<none>".into();
    };
    let port = match (&svc.port.name, svc.port.number) {
        (Some(n), _) => n.clone(),
        (None, Some(p)) => p.to_string(),
        (None, None) => "<none>".into(),
    };
    format!("{}:{port}", svc.name)
}

impl Print for Ingress {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let mut hosts: Vec<&str> = Vec::new();
        for r in &self.spec.rules {
            let h = match r.host.as_deref().unwrap_or("") {
                "" => "*",
                h => h,
            };
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        if hosts.is_empty() {
            hosts.push("*");
        }
        let lb = self
            .status
            .as_ref()
            .map(|s| s.load_balancer.ingress.as_slice());
        let addrs: Vec<&str> = lb
            .unwrap_or(&[])
            .iter()
            .map(|a| match a.ip.as_deref().unwrap_or("") {
                "" => a.hostname.as_deref().unwrap_or(""),
                ip => ip,
            })
            .collect();
        let ports = if self.spec.tls.is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            self.metadata.name().to_string(),
            ingress_class(self).to_string(),
            hosts.join(","),
            addrs.join(","),
            ports.into(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        let lb = self
            .status
            .as_ref()
            .map(|s| s.load_balancer.ingress.as_slice());
        let addrs: Vec<&str> = lb
            .unwrap_or(&[])
            .iter()
            .map(|a| a.ip.as_deref().unwrap_or(""))
            .collect();
        page.field(0, "Address", &addrs.join(","));
        page.field(0, "Ingress Class", ingress_class(self));
        let default = self
            .spec
            .default_backend
            .as_ref()
            .map_or_else(|| "<default>".into(), backend);
        page.field(0, "Default backend", &default);
        if !self.spec.tls.is_empty() {
            page.line("TLS:");
            for t in &self.spec.tls {
                page.line(&format!(
                    "  {} terminates {}",
                    or_none(t.secret_name.as_deref().unwrap_or("")),
                    t.hosts.join(",")
                ));
            }
        }
        page.line("Rules:");
        let mut rows = Vec::new();
        for r in &self.spec.rules {
            let host = match r.host.as_deref().unwrap_or("") {
                "" => "*",
                h => h,
            };
            rows.push(vec![host.to_string(), String::new(), String::new()]);
            for p in r.http.iter().flat_map(|h| &h.paths) {
                rows.push(vec![
                    String::new(),
                    format!(
                        "{} ({})",
                        or_none(p.path.as_deref().unwrap_or("")),
                        p.path_type.as_deref().unwrap_or("")
                    ),
                    backend(&p.backend),
                ]);
            }
        }
        let head = ["Host".to_string(), "Path".into(), "Backends".into()];
        for l in table(&head, &rows).lines() {
            page.line(&format!("  {l}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::object::{Kind, Object};
    use serde_json::json;

    #[test]
    fn ingress_shows_class_backends_tls_and_rules() {
        let v = json!({
            "metadata": {"name": "two-hosts", "namespace": "default"},
            "spec": {
                "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
                "tls": [{"hosts": ["web.example"], "secretName": "web-tls"}],
                "rules": [
                    {"host": "web.example", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix",
                         "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                    {"http": {"paths": [
                        {"path": "/api", "pathType": "Exact",
                         "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}
                ]
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "172.31.0.10"}, {"ip": "172.31.0.11"}]}}
        });
        let o = Object::decode(Kind::Ingress, &v, &mut |_| {}).unwrap();
        let d = o.describe().into_string();
        for want in [
            "Address:",
            "172.31.0.10,172.31.0.11",
            "Ingress Class:",
            "<none>",
            "fallback:80",
            "  web-tls terminates web.example",
            "/ (Prefix)",
            "web:80",
            "/api (Exact)",
            "api:http",
        ] {
            assert!(d.contains(want), "{want:?} in:\n{d}");
        }
        let rules = d.split("Rules:\n").nth(1).unwrap();
        let hosts: Vec<&str> = rules
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| !w.starts_with('/'))
            .collect();
        assert_eq!(hosts, ["web.example", "*"], "{rules}");
        let row = o.row(false, 0);
        assert_eq!(
            row[..5],
            [
                "two-hosts",
                "<none>",
                "web.example,*",
                "172.31.0.10,172.31.0.11",
                "80, 443"
            ]
        );
    }
}
