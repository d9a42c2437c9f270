//! What pods ask for and nodes offer, as the NodeResourcesFit filter counts it.

use skiff_api::pod::PodSpec;

/// CPU (millicores), memory and ephemeral storage (bytes), a pod count, and extended
/// resources (`example.com/gpu`: counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Millicores.
    pub cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Pods.
    pub pods: i64,
    /// Bytes of local ephemeral storage.
    pub ephemeral_storage: i64,
    /// Extended resources by name, sorted; most pods and nodes have none (no allocation).
    pub extended: Vec<(String, i64)>,
    /// Host ports the containers claim (a node's: those of its pods).
    pub host_ports: Vec<HostPort>,
}

/// A port on the node a container claims (`hostPort`): protocol, host IP (`0.0.0.0`
/// for every address), port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The address it is bound to; `0.0.0.0` for all.
    pub ip: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// Kubernetes' NodePorts rule: the same protocol and port, and the same address or
    /// either one every address.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        self.protocol == o.protocol
            && self.port == o.port
            && (self.ip == o.ip || self.ip == "0.0.0.0" || o.ip == "0.0.0.0")
    }

    /// The host ports of a pod's containers (as kube-scheduler reads them: app
    /// containers, `hostPort` above 0, TCP and `0.0.0.0` by default).
    pub fn of_pod(spec: &PodSpec) -> Vec<HostPort> {
        spec.containers
            .iter()
            .flat_map(|c| &c.ports)
            .filter_map(|p| {
                let port = p.host_port.filter(|h| *h > 0)?;
                Some(HostPort {
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    ip: p
                        .host_ip
                        .clone()
                        .filter(|ip| !ip.is_empty())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    port,
                })
            })
            .collect()
    }
}

impl Resources {
    /// What a pod asks for, as Kubernetes counts it (requests default to limits): the
    /// larger of its app containers' sum with every sidecar, and each init container's
    /// need while it runs (its own with the sidecars started before it).
    pub fn of_pod(spec: &PodSpec) -> Resources {
        let one = |c: &skiff_api::pod::Container, name: &str| -> i64 {
            let Some(r) = &c.resources else { return 0 };
            let q = r.requests.get(name).or_else(|| r.limits.get(name));
            match (q, name) {
                (Some(q), "cpu") => q.millis(),
                (Some(q), _) => q.value(),
                (None, _) => 0,
            }
        };
        let sum = |name: &str| -> i64 {
            let mut apps: i64 = spec.containers.iter().map(|c| one(c, name)).sum();
            let (mut sidecars, mut init) = (0i64, 0i64);
            for c in &spec.init_containers {
                let need = if c.is_sidecar() {
                    apps += one(c, name);
                    sidecars += one(c, name);
                    sidecars
                } else {
                    one(c, name) + sidecars
                };
                init = init.max(need);
            }
            apps.max(init)
        };
        // The extended resources any container names (requests default to limits).
        let mut names: Vec<&str> = spec
            .containers
            .iter()
            .chain(&spec.init_containers)
            .filter_map(|c| c.resources.as_ref())
            .flat_map(|r| r.requests.keys().chain(r.limits.keys()))
            .map(String::as_str)
            .filter(|k| skiff_api::pod::is_extended_resource(k))
            .collect();
        names.sort_unstable();
        names.dedup();
        Resources {
            cpu: sum("cpu"),
            memory: sum("memory"),
            pods: 1,
            ephemeral_storage: sum("ephemeral-storage"),
            extended: names
                .into_iter()
                .map(|n| (n.to_string(), sum(n)))
                .filter(|(_, v)| *v > 0)
                .collect(),
            host_ports: HostPort::of_pod(spec),
        }
    }

    /// The count of one extended resource (0 when absent).
    pub fn extended(&self, name: &str) -> i64 {
        self.extended
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map_or(0, |i| self.extended[i].1)
    }

    pub(super) fn add(&mut self, o: &Resources) {
        self.cpu += o.cpu;
        self.memory += o.memory;
        self.pods += o.pods;
        self.ephemeral_storage += o.ephemeral_storage;
        self.host_ports.extend(o.host_ports.iter().cloned());
        for (name, v) in &o.extended {
            match self.extended.binary_search_by(|(n, _)| n.cmp(name)) {
                Ok(i) => self.extended[i].1 += v,
                Err(i) => self.extended.insert(i, (name.clone(), *v)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::pod::Container;

    fn c(name: &str, cpu: &str, sidecar: bool) -> Container {
        let mut c: Container = serde_json::from_value(serde_json::json!({
            "name": name, "image": "x", "resources": {"requests": {"cpu": cpu}}
        }))
        .unwrap();
        if sidecar {
            c.restart_policy = Some("Always".into());
        }
        c
    }

    #[test]
    fn sidecars_count_beside_the_app_and_under_later_init_containers() {
        let spec = |init: Vec<Container>, apps: Vec<Container>| PodSpec {
            init_containers: init,
            containers: apps,
            ..Default::default()
        };
        // Plain init containers: the larger of the apps' sum and any one of them.
        let p = spec(vec![c("i", "500m", false)], vec![c("a", "100m", false)]);
        assert_eq!(Resources::of_pod(&p).cpu, 500);
        // A sidecar runs beside the apps: 100 + 200.
        let p = spec(vec![c("s", "200m", true)], vec![c("a", "100m", false)]);
        assert_eq!(Resources::of_pod(&p).cpu, 300);
        // An init container after a sidecar runs beside it: 200 + 250 = 450 > 300.
        let p = spec(
            vec![c("s", "200m", true), c("i", "250m", false)],
            vec![c("a", "100m", false)],
        );
        assert_eq!(Resources::of_pod(&p).cpu, 450);
        // One before the sidecar does not: max(250, 300).
        let p = spec(
            vec![c("i", "250m", false), c("s", "200m", true)],
            vec![c("a", "100m", false)],
        );
        assert_eq!(Resources::of_pod(&p).cpu, 300);
    }
}
