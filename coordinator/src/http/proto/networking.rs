//! The protobuf table of `networking.k8s.io/v1` Ingress (what `kubectl create ingress`
//! sends): field numbers of Kubernetes' `networking/v1/generated.proto`. A rule's
//! `IngressRuleValue` is its own message on the wire and inline in JSON (`rules[].http`).
//! A create's `status` is ignored, as Kubernetes ignores it.

use super::{Message, OBJECT_META, T};

static SERVICE_BACKEND_PORT: Message = Message {
    name: "ServiceBackendPort",
    fields: &[(1, "name", T::Str), (2, "number", T::Int0)],
};

static SERVICE_BACKEND: Message = Message {
    name: "IngressServiceBackend",
    fields: &[
        (1, "name", T::Str),
        (2, "port", T::Msg(&SERVICE_BACKEND_PORT)),
    ],
};

/// `core/v1` TypedLocalObjectReference.
static TYPED_LOCAL_REFERENCE: Message = Message {
    name: "TypedLocalObjectReference",
    fields: &[
        (1, "apiGroup", T::Str),
        (2, "kind", T::Str),
        (3, "name", T::Str),
    ],
};

static BACKEND: Message = Message {
    name: "IngressBackend",
    fields: &[
        (3, "resource", T::Msg(&TYPED_LOCAL_REFERENCE)),
        (4, "service", T::Msg(&SERVICE_BACKEND)),
    ],
};

static HTTP_PATH: Message = Message {
    name: "HTTPIngressPath",
    fields: &[
        (1, "path", T::Str),
        (2, "backend", T::Msg(&BACKEND)),
        (3, "pathType", T::Str),
    ],
};

static HTTP_RULE_VALUE: Message = Message {
    name: "HTTPIngressRuleValue",
    fields: &[(1, "paths", T::RepMsg(&HTTP_PATH))],
};

static RULE_VALUE: Message = Message {
    name: "IngressRuleValue",
    fields: &[(1, "http", T::Msg(&HTTP_RULE_VALUE))],
};

static RULE: Message = Message {
    name: "IngressRule",
    fields: &[
        (1, "host", T::Str),
        (2, "ingressRuleValue", T::Inline(&RULE_VALUE)),
    ],
};

static TLS: Message = Message {
    name: "IngressTLS",
    fields: &[(1, "hosts", T::RepStr), (2, "secretName", T::Str)],
};

static SPEC: Message = Message {
    name: "IngressSpec",
    fields: &[
        (1, "defaultBackend", T::Msg(&BACKEND)),
        (2, "tls", T::RepMsg(&TLS)),
        (3, "rules", T::RepMsg(&RULE)),
        (4, "ingressClassName", T::Str),
    ],
};

pub(super) static INGRESS: Message = Message {
    name: "Ingress",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "spec", T::Msg(&SPEC)),
        (3, "status", T::Skip),
    ],
};
