//! Core kinds: Namespace, Node, Service, ConfigMap, Secret, Event.

use crate::k8s_struct;
use crate::meta::{Condition, ObjectMeta, ObjectReference};
use crate::quantity::Quantity;
use crate::IntOrString;
use std::collections::BTreeMap;

k8s_struct! {
    /// A Namespace (`v1`).
    pub struct Namespace {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: Option<NamespaceSpec>,
        pub status: Option<NamespaceStatus>,
    }
}

k8s_struct! {
    /// `corev1.NamespaceSpec`.
    pub struct NamespaceSpec {
        pub finalizers: Vec<String>,
    }
}

k8s_struct! {
    /// `corev1.NamespaceStatus`.
    pub struct NamespaceStatus {
        pub phase: Option<String>,
    }
}

k8s_struct! {
    /// A Node (`v1`).
    pub struct Node {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: NodeSpec,
        pub status: Option<NodeStatus>,
    }
}

k8s_struct! {
    /// `corev1.NodeSpec`.
    pub struct NodeSpec {
        #[serde(rename = "podCIDR")]
        pub pod_cidr: Option<String>,
        #[serde(rename = "podCIDRs")]
        pub pod_cidrs: Vec<String>,
        pub unschedulable: Option<bool>,
        pub taints: Vec<Taint>,
        #[serde(rename = "providerID")]
        pub provider_id: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.Taint`.
    pub struct Taint {
        pub key: String,
        pub value: Option<String>,
        pub effect: String,
        pub time_added: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.NodeStatus`.
    pub struct NodeStatus {
        pub capacity: BTreeMap<String, Quantity>,
        pub allocatable: BTreeMap<String, Quantity>,
        pub conditions: Vec<Condition>,
        pub addresses: Vec<NodeAddress>,
        pub node_info: Option<NodeSystemInfo>,
    }
}

k8s_struct! {
    /// `corev1.NodeAddress`.
    pub struct NodeAddress {
        #[serde(rename = "type")]
        pub type_: String,
        pub address: String,
    }
}

k8s_struct! {
    /// `corev1.NodeSystemInfo`.
    pub struct NodeSystemInfo {
        #[serde(rename = "machineID")]
        pub machine_id: Option<String>,
        #[serde(rename = "bootID")]
        pub boot_id: Option<String>,
        pub kernel_version: Option<String>,
        pub os_image: Option<String>,
        pub operating_system: Option<String>,
        pub architecture: Option<String>,
        pub container_runtime_version: Option<String>,
        pub kubelet_version: Option<String>,
    }
}

k8s_struct! {
    /// A Service (`v1`).
    pub struct Service {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: ServiceSpec,
        pub status: Option<ServiceStatus>,
    }
}

k8s_struct! {
    /// `corev1.ServiceSpec`.
    pub struct ServiceSpec {
        #[serde(rename = "type")]
        pub type_: Option<String>,
        pub selector: BTreeMap<String, String>,
        pub ports: Vec<ServicePort>,
        #[serde(rename = "clusterIP")]
        pub cluster_ip: Option<String>,
        #[serde(rename = "clusterIPs")]
        pub cluster_ips: Vec<String>,
        pub session_affinity: Option<String>,
        pub session_affinity_config: Option<SessionAffinityConfig>,
        pub publish_not_ready_addresses: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.ServicePort`.
    pub struct ServicePort {
        pub name: Option<String>,
        pub protocol: Option<String>,
        pub port: Option<i32>,
        pub target_port: Option<IntOrString>,
        pub node_port: Option<i32>,
        pub app_protocol: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.SessionAffinityConfig`.
    pub struct SessionAffinityConfig {
        #[serde(rename = "clientIP")]
        pub client_ip: Option<ClientIpConfig>,
    }
}

k8s_struct! {
    /// `corev1.ClientIPConfig`.
    pub struct ClientIpConfig {
        pub timeout_seconds: Option<i32>,
    }
}

k8s_struct! {
    /// `corev1.ServiceStatus`.
    pub struct ServiceStatus {
        pub conditions: Vec<Condition>,
    }
}

k8s_struct! {
    /// Endpoints (`v1`): the addresses behind a Service, kept by the endpoints controller
    /// for Services with a selector, written by hand for Services without one.
    pub struct Endpoints {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub subsets: Vec<EndpointSubset>,
    }
}

k8s_struct! {
    /// `corev1.EndpointSubset`: addresses that share one set of ports.
    pub struct EndpointSubset {
        pub addresses: Vec<EndpointAddress>,
        pub not_ready_addresses: Vec<EndpointAddress>,
        pub ports: Vec<EndpointPort>,
    }
}

k8s_struct! {
    /// `corev1.EndpointAddress`.
    pub struct EndpointAddress {
        pub ip: String,
        pub hostname: Option<String>,
        pub node_name: Option<String>,
        pub target_ref: Option<crate::meta::ObjectReference>,
    }
}

k8s_struct! {
    /// `corev1.EndpointPort`.
    pub struct EndpointPort {
        pub name: Option<String>,
        pub port: Option<i32>,
        pub protocol: Option<String>,
        pub app_protocol: Option<String>,
    }
}

k8s_struct! {
    /// A ConfigMap (`v1`).
    pub struct ConfigMap {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub data: BTreeMap<String, String>,
        pub binary_data: BTreeMap<String, String>,
        pub immutable: Option<bool>,
    }
}

k8s_struct! {
    /// A Secret (`v1`). `stringData` is folded into `data` when written.
    pub struct Secret {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        #[serde(rename = "type")]
        pub type_: Option<String>,
        pub data: BTreeMap<String, String>,
        pub string_data: BTreeMap<String, String>,
        pub immutable: Option<bool>,
    }
}

k8s_struct! {
    /// An Event (`v1`).
    pub struct Event {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub involved_object: ObjectReference,
        pub reason: Option<String>,
        pub message: Option<String>,
        pub source: Option<EventSource>,
        pub first_timestamp: Option<String>,
        pub last_timestamp: Option<String>,
        pub count: Option<i32>,
        #[serde(rename = "type")]
        pub type_: Option<String>,
        pub reporting_component: Option<String>,
        pub reporting_instance: Option<String>,
        pub action: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.EventSource`.
    pub struct EventSource {
        pub component: Option<String>,
        pub host: Option<String>,
    }
}

impl Event {
    /// A new Event (count 1, first and last seen `at`) about `involved`, in its namespace
    /// (`default` for cluster-scoped objects); the caller names it.
    pub fn new(
        involved: ObjectReference,
        type_: &str,
        reason: String,
        message: String,
        at: String,
        source: EventSource,
    ) -> Event {
        Event {
            api_version: "v1".into(),
            kind: "Event".into(),
            metadata: ObjectMeta {
                namespace: Some(
                    involved
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                ),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason),
            message: Some(message),
            source: Some(source),
            first_timestamp: Some(at.clone()),
            last_timestamp: Some(at),
            count: Some(1),
            type_: Some(type_.into()),
            ..Default::default()
        }
    }
}
