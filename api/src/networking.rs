//! networking.k8s.io/v1: Ingress.

use crate::k8s_struct;
use crate::meta::ObjectMeta;

/// The annotation an agent puts on its Node naming the Ingress class it serves (absent:
/// it serves none); the coordinator lists those nodes in the Ingresses' status.
pub const NODE_INGRESS_CLASS: &str = "skiff.dev/ingress-class";

k8s_struct! {
    /// An Ingress (`networking.k8s.io/v1`): HTTP(S) routes by host and path to Services,
    /// served by every agent on its ingress ports.
    pub struct Ingress {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: IngressSpec,
        pub status: Option<IngressStatus>,
    }
}

k8s_struct! {
    /// `networkingv1.IngressSpec`.
    pub struct IngressSpec {
        pub ingress_class_name: Option<String>,
        pub default_backend: Option<IngressBackend>,
        pub tls: Vec<IngressTls>,
        pub rules: Vec<IngressRule>,
    }
}

k8s_struct! {
    /// `networkingv1.IngressTLS`: the hosts a TLS Secret's certificate serves.
    pub struct IngressTls {
        pub hosts: Vec<String>,
        pub secret_name: Option<String>,
    }
}

k8s_struct! {
    /// `networkingv1.IngressRule`: paths under one host (or every host).
    pub struct IngressRule {
        pub host: Option<String>,
        pub http: Option<HttpIngressRuleValue>,
    }
}

k8s_struct! {
    /// `networkingv1.HTTPIngressRuleValue`.
    pub struct HttpIngressRuleValue {
        pub paths: Vec<HttpIngressPath>,
    }
}

k8s_struct! {
    /// `networkingv1.HTTPIngressPath`.
    pub struct HttpIngressPath {
        pub path: Option<String>,
        pub path_type: Option<String>,
        pub backend: IngressBackend,
    }
}

k8s_struct! {
    /// `networkingv1.IngressBackend`. skiff routes to Services; `resource` backends are
    /// refused by validation.
    pub struct IngressBackend {
        pub service: Option<IngressServiceBackend>,
        pub resource: Option<TypedLocalObjectReference>,
    }
}

k8s_struct! {
    /// `networkingv1.IngressServiceBackend`.
    pub struct IngressServiceBackend {
        pub name: String,
        pub port: ServiceBackendPort,
    }
}

k8s_struct! {
    /// `networkingv1.ServiceBackendPort`: a Service port by name or by number.
    pub struct ServiceBackendPort {
        pub name: Option<String>,
        pub number: Option<i32>,
    }
}

k8s_struct! {
    /// `corev1.TypedLocalObjectReference`.
    pub struct TypedLocalObjectReference {
        pub api_group: Option<String>,
        pub kind: String,
        pub name: String,
    }
}

k8s_struct! {
    /// `networkingv1.IngressStatus`.
    pub struct IngressStatus {
        pub load_balancer: IngressLoadBalancerStatus,
    }
}

k8s_struct! {
    /// `networkingv1.IngressLoadBalancerStatus`.
    pub struct IngressLoadBalancerStatus {
        pub ingress: Vec<IngressLoadBalancerIngress>,
    }
}

k8s_struct! {
    /// `networkingv1.IngressLoadBalancerIngress`.
    pub struct IngressLoadBalancerIngress {
        pub ip: Option<String>,
        pub hostname: Option<String>,
    }
}

impl Ingress {
    /// The names of the Secrets its TLS entries name.
    pub fn tls_secret_names(&self) -> Vec<String> {
        self.spec
            .tls
            .iter()
            .filter_map(|t| t.secret_name.clone())
            .collect()
    }

    /// Its class: `spec.ingressClassName`, else the older annotation.
    pub fn class(&self) -> Option<&str> {
        self.spec.ingress_class_name.as_deref().or_else(|| {
            self.metadata
                .annotations
                .get("kubernetes.io/ingress.class")
                .map(String::as_str)
        })
    }
}
