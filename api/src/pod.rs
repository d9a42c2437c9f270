//! Pods and everything a Pod spec holds.

use crate::k8s_struct;
use crate::meta::{Condition, ObjectMeta};
use crate::quantity::Quantity;
use crate::selector::LabelSelector;
use crate::IntOrString;
use std::collections::BTreeMap;

k8s_struct! {
    /// A Pod (`v1`).
    pub struct Pod {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: PodSpec,
        pub status: Option<PodStatus>,
    }
}

k8s_struct! {
    /// `corev1.PodSpec`.
    pub struct PodSpec {
        pub containers: Vec<Container>,
        pub init_containers: Vec<Container>,
        pub restart_policy: Option<String>,
        pub termination_grace_period_seconds: Option<i64>,
        pub active_deadline_seconds: Option<i64>,
        pub node_selector: BTreeMap<String, String>,
        pub node_name: Option<String>,
        pub affinity: Option<Affinity>,
        pub tolerations: Vec<Toleration>,
        pub host_network: Option<bool>,
        pub hostname: Option<String>,
        pub subdomain: Option<String>,
        /// Lines added to the pod's `/etc/hosts`.
        pub host_aliases: Vec<HostAlias>,
        pub volumes: Vec<Volume>,
        pub priority: Option<i32>,
        pub priority_class_name: Option<String>,
        pub preemption_policy: Option<String>,
        pub security_context: Option<PodSecurityContext>,
        pub image_pull_secrets: Vec<LocalObjectReference>,
        /// The ServiceAccount the pod runs as (admission sets `default` when unset).
        pub service_account_name: Option<String>,
        /// The deprecated name of `serviceAccountName`, kept equal to it.
        pub service_account: Option<String>,
        /// While any is left, the scheduler leaves the pod alone (SchedulingGated); they
        /// may only be removed.
        pub scheduling_gates: Vec<PodSchedulingGate>,
        /// `ClusterFirst` (the default), `ClusterFirstWithHostNet`, `Default` or `None`.
        pub dns_policy: Option<String>,
        /// Nameservers, searches and options added to (or, with `None`, making) the pod's
        /// `resolv.conf`.
        pub dns_config: Option<PodDnsConfig>,
    }
}

k8s_struct! {
    /// `corev1.PodSchedulingGate`.
    pub struct PodSchedulingGate {
        pub name: String,
    }
}

k8s_struct! {
    /// `corev1.PodDNSConfig`.
    pub struct PodDnsConfig {
        pub nameservers: Vec<String>,
        pub searches: Vec<String>,
        pub options: Vec<PodDnsConfigOption>,
    }
}

k8s_struct! {
    /// `corev1.PodDNSConfigOption`.
    pub struct PodDnsConfigOption {
        pub name: Option<String>,
        pub value: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.PodSecurityContext`.
    pub struct PodSecurityContext {
        pub run_as_user: Option<i64>,
        pub run_as_group: Option<i64>,
        pub run_as_non_root: Option<bool>,
        pub fs_group: Option<i64>,
        pub supplemental_groups: Vec<i64>,
    }
}

k8s_struct! {
    /// `corev1.LocalObjectReference`.
    pub struct LocalObjectReference {
        pub name: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.HostAlias`: an address and the names it has in the pod's `/etc/hosts`.
    pub struct HostAlias {
        pub ip: String,
        pub hostnames: Vec<String>,
    }
}

k8s_struct! {
    /// `corev1.Container`.
    pub struct Container {
        pub name: String,
        pub image: Option<String>,
        pub image_pull_policy: Option<String>,
        pub command: Vec<String>,
        pub args: Vec<String>,
        pub working_dir: Option<String>,
        pub env: Vec<EnvVar>,
        pub env_from: Vec<EnvFromSource>,
        pub ports: Vec<ContainerPort>,
        pub resources: Option<ResourceRequirements>,
        pub volume_mounts: Vec<VolumeMount>,
        pub liveness_probe: Option<Probe>,
        pub readiness_probe: Option<Probe>,
        pub startup_probe: Option<Probe>,
        pub security_context: Option<SecurityContext>,
        pub lifecycle: Option<Lifecycle>,
        /// Keep the container's standard input open for `attach` (the monitor holds it).
        pub stdin: Option<bool>,
        /// Close standard input when the first attach that used it ends.
        pub stdin_once: Option<bool>,
        /// Give the container a terminal (its output is the terminal's, logged as stdout).
        pub tty: Option<bool>,
        /// `Always` on an init container makes it a sidecar (Kubernetes' restartable init
        /// container): started in order with the init containers, kept running beside the
        /// app containers, stopped after them. Not allowed on app containers.
        pub restart_policy: Option<String>,
    }
}

impl Container {
    /// An init container with `restartPolicy: Always`: a sidecar.
    pub fn is_sidecar(&self) -> bool {
        self.restart_policy.as_deref() == Some("Always")
    }
}

k8s_struct! {
    /// `corev1.EnvVar`.
    pub struct EnvVar {
        pub name: String,
        pub value: Option<String>,
        pub value_from: Option<EnvVarSource>,
    }
}

k8s_struct! {
    /// `corev1.EnvVarSource`.
    pub struct EnvVarSource {
        pub config_map_key_ref: Option<KeySelector>,
        pub secret_key_ref: Option<KeySelector>,
        pub field_ref: Option<ObjectFieldSelector>,
        pub resource_field_ref: Option<ResourceFieldSelector>,
    }
}

k8s_struct! {
    /// `configMapKeyRef` / `secretKeyRef`.
    pub struct KeySelector {
        pub name: Option<String>,
        pub key: String,
        pub optional: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.ObjectFieldSelector`.
    pub struct ObjectFieldSelector {
        pub api_version: Option<String>,
        pub field_path: String,
    }
}

k8s_struct! {
    /// `corev1.EnvFromSource`.
    pub struct EnvFromSource {
        pub prefix: Option<String>,
        pub config_map_ref: Option<OptionalRef>,
        pub secret_ref: Option<OptionalRef>,
    }
}

k8s_struct! {
    /// `configMapRef` / `secretRef` of `envFrom`.
    pub struct OptionalRef {
        pub name: Option<String>,
        pub optional: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.ContainerPort`.
    pub struct ContainerPort {
        pub name: Option<String>,
        pub container_port: Option<i32>,
        pub host_port: Option<i32>,
        #[serde(rename = "hostIP")]
        pub host_ip: Option<String>,
        pub protocol: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.ResourceRequirements`.
    pub struct ResourceRequirements {
        pub limits: BTreeMap<String, Quantity>,
        pub requests: BTreeMap<String, Quantity>,
    }
}

/// An extended resource: a qualified name with a domain outside `kubernetes.io`
/// (`example.com/gpu`, `nvidia.com/gpu`), counted by the scheduler against what nodes
/// advertise.
pub fn is_extended_resource(name: &str) -> bool {
    match name.split_once('/') {
        Some((domain, rest)) => {
            !rest.is_empty()
                && !rest.contains('/')
                && domain != "kubernetes.io"
                && !domain.ends_with(".kubernetes.io")
                && !name.starts_with("requests.")
                && crate::validate::qualified_name_problem(name).is_none()
        }
        None => false,
    }
}

k8s_struct! {
    /// `corev1.VolumeMount`.
    pub struct VolumeMount {
        pub name: String,
        pub mount_path: String,
        pub sub_path: Option<String>,
        pub read_only: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.Probe`.
    pub struct Probe {
        pub exec: Option<ExecAction>,
        pub http_get: Option<HttpGetAction>,
        pub tcp_socket: Option<TcpSocketAction>,
        pub initial_delay_seconds: Option<i32>,
        pub period_seconds: Option<i32>,
        pub timeout_seconds: Option<i32>,
        pub success_threshold: Option<i32>,
        pub failure_threshold: Option<i32>,
        pub termination_grace_period_seconds: Option<i64>,
    }
}

k8s_struct! {
    /// `corev1.ExecAction`.
    pub struct ExecAction {
        pub command: Vec<String>,
    }
}

k8s_struct! {
    /// `corev1.HTTPGetAction`.
    pub struct HttpGetAction {
        pub path: Option<String>,
        pub port: Option<IntOrString>,
        pub host: Option<String>,
        pub scheme: Option<String>,
        pub http_headers: Vec<HttpHeader>,
    }
}

k8s_struct! {
    /// `corev1.HTTPHeader`.
    pub struct HttpHeader {
        pub name: String,
        pub value: String,
    }
}

k8s_struct! {
    /// `corev1.TCPSocketAction`.
    pub struct TcpSocketAction {
        pub port: Option<IntOrString>,
        pub host: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.SecurityContext`.
    pub struct SecurityContext {
        pub run_as_user: Option<i64>,
        pub run_as_group: Option<i64>,
        pub run_as_non_root: Option<bool>,
        pub privileged: Option<bool>,
        pub capabilities: Option<Capabilities>,
        pub read_only_root_filesystem: Option<bool>,
        pub allow_privilege_escalation: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.Capabilities`.
    pub struct Capabilities {
        pub add: Vec<String>,
        pub drop: Vec<String>,
    }
}

k8s_struct! {
    /// `corev1.Lifecycle` (skiff runs `preStop`).
    pub struct Lifecycle {
        pub post_start: Option<LifecycleHandler>,
        pub pre_stop: Option<LifecycleHandler>,
    }
}

k8s_struct! {
    /// `corev1.LifecycleHandler`.
    pub struct LifecycleHandler {
        pub exec: Option<ExecAction>,
        pub http_get: Option<HttpGetAction>,
        pub tcp_socket: Option<TcpSocketAction>,
    }
}

k8s_struct! {
    /// `corev1.Affinity`.
    pub struct Affinity {
        pub node_affinity: Option<NodeAffinity>,
        pub pod_affinity: Option<PodAffinity>,
        pub pod_anti_affinity: Option<PodAffinity>,
    }
}

k8s_struct! {
    /// `corev1.NodeAffinity`.
    pub struct NodeAffinity {
        pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
        pub preferred_during_scheduling_ignored_during_execution: Vec<PreferredSchedulingTerm>,
    }
}

k8s_struct! {
    /// `corev1.NodeSelector`.
    pub struct NodeSelector {
        pub node_selector_terms: Vec<NodeSelectorTerm>,
    }
}

k8s_struct! {
    /// `corev1.NodeSelectorTerm`.
    pub struct NodeSelectorTerm {
        pub match_expressions: Vec<NodeSelectorRequirement>,
        pub match_fields: Vec<NodeSelectorRequirement>,
    }
}

k8s_struct! {
    /// `corev1.NodeSelectorRequirement` (operators In, NotIn, Exists, DoesNotExist, Gt, Lt).
    pub struct NodeSelectorRequirement {
        pub key: String,
        pub operator: String,
        pub values: Vec<String>,
    }
}

k8s_struct! {
    /// `corev1.PreferredSchedulingTerm`.
    pub struct PreferredSchedulingTerm {
        pub weight: i32,
        pub preference: NodeSelectorTerm,
    }
}

k8s_struct! {
    /// `corev1.PodAffinity` and `corev1.PodAntiAffinity` (same shape).
    pub struct PodAffinity {
        pub required_during_scheduling_ignored_during_execution: Vec<PodAffinityTerm>,
        pub preferred_during_scheduling_ignored_during_execution: Vec<WeightedPodAffinityTerm>,
    }
}

k8s_struct! {
    /// `corev1.PodAffinityTerm`.
    pub struct PodAffinityTerm {
        pub label_selector: Option<LabelSelector>,
        pub namespaces: Vec<String>,
        pub namespace_selector: Option<LabelSelector>,
        pub topology_key: String,
    }
}

k8s_struct! {
    /// `corev1.WeightedPodAffinityTerm`.
    pub struct WeightedPodAffinityTerm {
        pub weight: i32,
        pub pod_affinity_term: PodAffinityTerm,
    }
}

k8s_struct! {
    /// `corev1.Toleration`.
    pub struct Toleration {
        pub key: Option<String>,
        pub operator: Option<String>,
        pub value: Option<String>,
        pub effect: Option<String>,
        pub toleration_seconds: Option<i64>,
    }
}

k8s_struct! {
    /// `corev1.Volume`: exactly one source.
    pub struct Volume {
        pub name: String,
        pub empty_dir: Option<EmptyDirVolumeSource>,
        pub host_path: Option<HostPathVolumeSource>,
        pub config_map: Option<ConfigMapVolumeSource>,
        pub secret: Option<SecretVolumeSource>,
        pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
        pub projected: Option<ProjectedVolumeSource>,
        #[serde(rename = "downwardAPI")]
        pub downward_api: Option<DownwardApiVolumeSource>,
    }
}

k8s_struct! {
    /// `corev1.ProjectedVolumeSource`: files from several sources in one directory.
    pub struct ProjectedVolumeSource {
        pub sources: Vec<VolumeProjection>,
        pub default_mode: Option<i32>,
    }
}

k8s_struct! {
    /// `corev1.VolumeProjection`: exactly one source.
    pub struct VolumeProjection {
        pub secret: Option<ObjectProjection>,
        pub config_map: Option<ObjectProjection>,
        #[serde(rename = "downwardAPI")]
        pub downward_api: Option<DownwardApiProjection>,
        pub service_account_token: Option<ServiceAccountTokenProjection>,
        pub cluster_trust_bundle: Option<ClusterTrustBundleProjection>,
    }
}

k8s_struct! {
    /// `corev1.SecretProjection` / `corev1.ConfigMapProjection`.
    pub struct ObjectProjection {
        pub name: Option<String>,
        pub items: Vec<KeyToPath>,
        pub optional: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.DownwardAPIProjection`.
    pub struct DownwardApiProjection {
        pub items: Vec<DownwardApiVolumeFile>,
    }
}

k8s_struct! {
    /// `corev1.ServiceAccountTokenProjection`.
    pub struct ServiceAccountTokenProjection {
        pub audience: Option<String>,
        pub expiration_seconds: Option<i64>,
        pub path: String,
    }
}

k8s_struct! {
    /// `corev1.ClusterTrustBundleProjection`.
    pub struct ClusterTrustBundleProjection {
        pub name: Option<String>,
        pub signer_name: Option<String>,
        pub label_selector: Option<crate::selector::LabelSelector>,
        pub optional: Option<bool>,
        pub path: String,
    }
}

k8s_struct! {
    /// `corev1.DownwardAPIVolumeSource`.
    pub struct DownwardApiVolumeSource {
        pub items: Vec<DownwardApiVolumeFile>,
        pub default_mode: Option<i32>,
    }
}

k8s_struct! {
    /// `corev1.DownwardAPIVolumeFile`: one file from a field of the pod or a container's
    /// resources.
    pub struct DownwardApiVolumeFile {
        pub path: String,
        pub field_ref: Option<ObjectFieldSelector>,
        pub resource_field_ref: Option<ResourceFieldSelector>,
        pub mode: Option<i32>,
    }
}

k8s_struct! {
    /// `corev1.ResourceFieldSelector`: a container's limit or request, in `divisor` units.
    pub struct ResourceFieldSelector {
        pub container_name: Option<String>,
        pub resource: String,
        pub divisor: Option<Quantity>,
    }
}

k8s_struct! {
    /// `corev1.EmptyDirVolumeSource`.
    pub struct EmptyDirVolumeSource {
        pub medium: Option<String>,
        pub size_limit: Option<Quantity>,
    }
}

k8s_struct! {
    /// `corev1.HostPathVolumeSource`.
    pub struct HostPathVolumeSource {
        pub path: String,
        #[serde(rename = "type")]
        pub type_: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.ConfigMapVolumeSource`.
    pub struct ConfigMapVolumeSource {
        pub name: Option<String>,
        pub items: Vec<KeyToPath>,
        pub default_mode: Option<i32>,
        pub optional: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.SecretVolumeSource`.
    pub struct SecretVolumeSource {
        pub secret_name: Option<String>,
        pub items: Vec<KeyToPath>,
        pub default_mode: Option<i32>,
        pub optional: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.KeyToPath`.
    pub struct KeyToPath {
        pub key: String,
        pub path: String,
        pub mode: Option<i32>,
    }
}

k8s_struct! {
    /// `corev1.PersistentVolumeClaimVolumeSource`.
    pub struct PersistentVolumeClaimVolumeSource {
        pub claim_name: String,
        pub read_only: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.PodStatus`.
    pub struct PodStatus {
        pub phase: Option<String>,
        pub conditions: Vec<Condition>,
        pub message: Option<String>,
        pub reason: Option<String>,
        #[serde(rename = "hostIP")]
        pub host_ip: Option<String>,
        #[serde(rename = "podIP")]
        pub pod_ip: Option<String>,
        #[serde(rename = "podIPs")]
        pub pod_ips: Vec<PodIp>,
        pub start_time: Option<String>,
        pub init_container_statuses: Vec<ContainerStatus>,
        pub container_statuses: Vec<ContainerStatus>,
    }
}

k8s_struct! {
    /// `corev1.PodIP`.
    pub struct PodIp {
        pub ip: String,
    }
}

k8s_struct! {
    /// `corev1.ContainerStatus`.
    pub struct ContainerStatus {
        pub name: String,
        pub state: Option<ContainerState>,
        pub last_state: Option<ContainerState>,
        pub ready: Option<bool>,
        pub started: Option<bool>,
        pub restart_count: Option<i32>,
        pub image: Option<String>,
        #[serde(rename = "imageID")]
        pub image_id: Option<String>,
        #[serde(rename = "containerID")]
        pub container_id: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.ContainerState`: one of waiting, running, terminated.
    pub struct ContainerState {
        pub waiting: Option<ContainerStateWaiting>,
        pub running: Option<ContainerStateRunning>,
        pub terminated: Option<ContainerStateTerminated>,
    }
}

k8s_struct! {
    /// `corev1.ContainerStateWaiting`.
    pub struct ContainerStateWaiting {
        pub reason: Option<String>,
        pub message: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.ContainerStateRunning`.
    pub struct ContainerStateRunning {
        pub started_at: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.ContainerStateTerminated`.
    pub struct ContainerStateTerminated {
        pub exit_code: Option<i32>,
        pub signal: Option<i32>,
        pub reason: Option<String>,
        pub message: Option<String>,
        pub started_at: Option<String>,
        pub finished_at: Option<String>,
        #[serde(rename = "containerID")]
        pub container_id: Option<String>,
    }
}

impl PodSpec {
    /// Names of the ConfigMaps this pod reads (env, envFrom, volumes).
    pub fn config_map_names(&self) -> std::collections::BTreeSet<String> {
        let mut out = self.referenced(
            |s| s.config_map_key_ref.as_ref(),
            |e| e.config_map_ref.as_ref(),
        );
        out.extend(
            self.volumes
                .iter()
                .filter_map(|v| v.config_map.as_ref()?.name.clone()),
        );
        out.extend(self.projections(|p| p.config_map.as_ref()));
        out
    }

    /// Names of the objects a projected volume's sources of one kind name.
    fn projections(
        &self,
        of: impl Fn(&VolumeProjection) -> Option<&ObjectProjection>,
    ) -> Vec<String> {
        self.volumes
            .iter()
            .filter_map(|v| v.projected.as_ref())
            .flat_map(|p| &p.sources)
            .filter_map(|s| of(s)?.name.clone())
            .collect()
    }

    /// Names of the Secrets this pod reads (env, envFrom, volumes, imagePullSecrets).
    pub fn secret_names(&self) -> std::collections::BTreeSet<String> {
        let mut out = self.referenced(|s| s.secret_key_ref.as_ref(), |e| e.secret_ref.as_ref());
        out.extend(
            self.volumes
                .iter()
                .filter_map(|v| v.secret.as_ref()?.secret_name.clone()),
        );
        out.extend(self.projections(|p| p.secret.as_ref()));
        out.extend(
            self.image_pull_secrets
                .iter()
                .filter_map(|s| s.name.clone()),
        );
        out
    }

    /// Names referenced from the containers' `env[].valueFrom` and `envFrom[]`.
    fn referenced(
        &self,
        key_ref: impl Fn(&EnvVarSource) -> Option<&KeySelector>,
        from_ref: impl Fn(&EnvFromSource) -> Option<&OptionalRef>,
    ) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for c in self.containers.iter().chain(&self.init_containers) {
            out.extend(
                c.env
                    .iter()
                    .filter_map(|e| key_ref(e.value_from.as_ref()?)?.name.clone()),
            );
            out.extend(c.env_from.iter().filter_map(|e| from_ref(e)?.name.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::parse_manifests;
    use crate::Object;

    #[test]
    fn references_from_env_envfrom_volumes_and_pull_secrets() {
        let text = r#"apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  imagePullSecrets: [{name: regcred}]
  initContainers:
  - name: init
    image: x
    envFrom: [{configMapRef: {name: cm-init}}]
  containers:
  - name: c
    image: x
    env:
    - {name: A, valueFrom: {configMapKeyRef: {name: cm-env, key: k}}}
    - {name: B, valueFrom: {secretKeyRef: {name: s-env, key: k}}}
    envFrom: [{secretRef: {name: s-from}}]
  volumes:
  - {name: v1, configMap: {name: cm-vol}}
  - {name: v2, secret: {secretName: s-vol}}
"#;
        let Object::Pod(p) = parse_manifests(text).unwrap().remove(0).object else {
            panic!()
        };
        let cms: Vec<String> = p.spec.config_map_names().into_iter().collect();
        assert_eq!(cms, ["cm-env", "cm-init", "cm-vol"]);
        let secrets: Vec<String> = p.spec.secret_names().into_iter().collect();
        assert_eq!(secrets, ["regcred", "s-env", "s-from", "s-vol"]);
    }
}
