//! `metadata`: the part every object shares.

use crate::k8s_struct;
use std::collections::BTreeMap;

k8s_struct! {
    /// `metav1.ObjectMeta`.
    pub struct ObjectMeta {
        pub name: Option<String>,
        pub generate_name: Option<String>,
        pub namespace: Option<String>,
        pub labels: BTreeMap<String, String>,
        pub annotations: BTreeMap<String, String>,
        pub uid: Option<String>,
        pub resource_version: Option<String>,
        pub generation: Option<i64>,
        pub creation_timestamp: Option<String>,
        pub deletion_timestamp: Option<String>,
        pub deletion_grace_period_seconds: Option<i64>,
        pub owner_references: Vec<OwnerReference>,
        pub finalizers: Vec<String>,
        /// Who set which fields (server-side apply): kept across writes that do not send
        /// it, replaced by writes that do.
        pub managed_fields: Vec<ManagedFieldsEntry>,
    }
}

k8s_struct! {
    /// `metav1.ManagedFieldsEntry`: one field manager's fields, for one operation.
    pub struct ManagedFieldsEntry {
        pub manager: String,
        /// `Apply` or `Update`.
        pub operation: String,
        pub api_version: String,
        pub time: Option<String>,
        /// Always `FieldsV1`.
        pub fields_type: Option<String>,
        /// The set of fields, as Kubernetes' `FieldsV1` tree (`f:spec`, `k:{"name":"x"}`,
        /// `v:"value"`, `.`).
        #[serde(rename = "fieldsV1")]
        pub fields_v1: Option<serde_json::Value>,
        pub subresource: Option<String>,
    }
}

k8s_struct! {
    /// `metav1.OwnerReference`.
    pub struct OwnerReference {
        pub api_version: String,
        pub kind: String,
        pub name: String,
        pub uid: String,
        pub controller: Option<bool>,
        pub block_owner_deletion: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.ObjectReference`, as events name what they are about.
    pub struct ObjectReference {
        pub api_version: Option<String>,
        pub kind: Option<String>,
        pub namespace: Option<String>,
        pub name: Option<String>,
        pub uid: Option<String>,
        pub resource_version: Option<String>,
        pub field_path: Option<String>,
    }
}

k8s_struct! {
    /// A status condition of the common `metav1.Condition`-like shape.
    pub struct Condition {
        #[serde(rename = "type")]
        pub type_: String,
        pub status: String,
        pub reason: Option<String>,
        pub message: Option<String>,
        pub last_update_time: Option<String>,
        pub last_transition_time: Option<String>,
        pub last_probe_time: Option<String>,
        pub last_heartbeat_time: Option<String>,
        pub observed_generation: Option<i64>,
    }
}

impl ObjectMeta {
    /// The name, or "" when none was given yet.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    /// The namespace, or "" when none was given.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
    /// The owner reference of its controller (`controller: true`), if it has one.
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.owner_references
            .iter()
            .find(|o| o.controller == Some(true))
    }

    /// `resourceVersion` as the store revision it names.
    pub fn revision(&self) -> Option<u64> {
        self.resource_version.as_deref()?.parse().ok()
    }
}
