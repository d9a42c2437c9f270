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
}

impl Resources {
    /// What a pod asks for: the larger of its containers' sum and any one init container
    /// (requests default to limits, as Kubernetes defaults them).
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
            let s: i64 = spec.containers.iter().map(|c| one(c, name)).sum();
            spec.init_containers
                .iter()
                .map(|c| one(c, name))
                .fold(s, i64::max)
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
        for (name, v) in &o.extended {
            match self.extended.binary_search_by(|(n, _)| n.cmp(name)) {
                Ok(i) => self.extended[i].1 += v,
                Err(i) => self.extended.insert(i, (name.clone(), *v)),
            }
        }
    }
}
