//! The protobuf tables of what kubectl's generators send for accounts and access:
//! `kubectl create serviceaccount|role|clusterrole|rolebinding|clusterrolebinding|quota`
//! and `kubectl create token` (a TokenRequest): field numbers of Kubernetes'
//! `core/v1`, `rbac/v1` and `authentication/v1` `generated.proto`.

use super::{decode, unknown, Message, OBJECT_META, T};
use serde_json::Value;

static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        (1, "kind", T::Str),
        (2, "namespace", T::Str),
        (3, "name", T::Str),
        (4, "uid", T::Str),
        (5, "apiVersion", T::Str),
        (6, "resourceVersion", T::Str),
        (7, "fieldPath", T::Str),
    ],
};
static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[(1, "name", T::Str)],
};
/// What `kubectl create serviceaccount` sends.
pub(super) static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "secrets", T::RepMsg(&OBJECT_REFERENCE)),
        (3, "imagePullSecrets", T::RepMsg(&LOCAL_OBJECT_REFERENCE)),
        (4, "automountServiceAccountToken", T::Bool),
    ],
};
static POLICY_RULE: Message = Message {
    name: "PolicyRule",
    fields: &[
        (1, "verbs", T::RepStr),
        (2, "apiGroups", T::RepStr),
        (3, "resources", T::RepStr),
        (4, "resourceNames", T::RepStr),
        (5, "nonResourceURLs", T::RepStr),
    ],
};
/// What `kubectl create role|clusterrole` sends (a ClusterRole's aggregationRule aside).
pub(super) static ROLE: Message = Message {
    name: "Role",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "rules", T::RepMsg(&POLICY_RULE)),
    ],
};
static SUBJECT: Message = Message {
    name: "Subject",
    fields: &[
        (1, "kind", T::Str),
        (2, "apiGroup", T::Str),
        (3, "name", T::Str),
        (4, "namespace", T::Str),
    ],
};
static ROLE_REF: Message = Message {
    name: "RoleRef",
    fields: &[
        (1, "apiGroup", T::Str),
        (2, "kind", T::Str),
        (3, "name", T::Str),
    ],
};
/// What `kubectl create rolebinding|clusterrolebinding` sends.
pub(super) static ROLE_BINDING: Message = Message {
    name: "RoleBinding",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "subjects", T::RepMsg(&SUBJECT)),
        (3, "roleRef", T::Msg(&ROLE_REF)),
    ],
};
static QUOTA_SPEC: Message = Message {
    name: "ResourceQuotaSpec",
    fields: &[(1, "hard", T::MapQty), (2, "scopes", T::RepStr)],
};
/// Empty in a create (and dropped then, as all status is).
static QUOTA_STATUS: Message = Message {
    name: "ResourceQuotaStatus",
    fields: &[(1, "hard", T::MapQty), (2, "used", T::MapQty)],
};
/// What `kubectl create quota` sends.
pub(super) static RESOURCE_QUOTA: Message = Message {
    name: "ResourceQuota",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "spec", T::Msg(&QUOTA_SPEC)),
        (3, "status", T::Msg(&QUOTA_STATUS)),
    ],
};
static BOUND_OBJECT_REFERENCE: Message = Message {
    name: "BoundObjectReference",
    fields: &[
        (1, "kind", T::Str),
        (2, "apiVersion", T::Str),
        (3, "name", T::Str),
        (4, "uid", T::Str),
    ],
};
static TOKEN_REQUEST_SPEC: Message = Message {
    name: "TokenRequestSpec",
    fields: &[
        (1, "audiences", T::RepStr),
        (3, "boundObjectRef", T::Msg(&BOUND_OBJECT_REFERENCE)),
        (4, "expirationSeconds", T::Int),
    ],
};
/// Empty in a request; read so that kubectl's (empty) status is no stranger.
static TOKEN_REQUEST_STATUS: Message = Message {
    name: "TokenRequestStatus",
    fields: &[(1, "token", T::Str), (2, "expirationTimestamp", T::Time)],
};
static TOKEN_REQUEST: Message = Message {
    name: "TokenRequest",
    fields: &[
        (1, "metadata", T::Msg(&OBJECT_META)),
        (2, "spec", T::Msg(&TOKEN_REQUEST_SPEC)),
        (3, "status", T::Msg(&TOKEN_REQUEST_STATUS)),
    ],
};

/// A TokenRequest (`kubectl create token`), as its JSON.
pub fn token_request(body: &[u8]) -> Result<Value, String> {
    let (api_version, kind, raw) = unknown(body)?;
    if kind != "TokenRequest" || api_version != "authentication.k8s.io/v1" {
        return Err(format!(
            "skiff reads only an authentication.k8s.io/v1 TokenRequest here, not {api_version}/{kind}"
        ));
    }
    let mut o = decode(raw, &TOKEN_REQUEST)?;
    o.insert("apiVersion".into(), api_version.into());
    o.insert("kind".into(), kind.into());
    Ok(Value::Object(o))
}
