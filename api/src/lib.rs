//! skiff's object model, manifests, validation and wire protocol. No I/O lives here.
//!
//! Objects are Kubernetes-shaped (`apiVersion`, `kind`, `metadata`, `spec`, `status`
//! with Kubernetes' field names), so manifests from the Kubernetes documentation apply
//! as they are.

pub mod access;
pub mod autoscaling;
pub mod conditions;
pub mod core;
pub mod cron;
pub mod defaults;
pub mod ingress_class;
pub mod intstr;
pub mod manifest;
pub mod meta;
pub mod networking;
pub mod object;
pub mod pod;
pub mod policy;
pub mod print;
pub mod quantity;
pub mod quota;
pub mod resource;
pub mod scheduling;
pub mod selector;
pub mod storage;
pub mod util;
pub mod validate;
pub mod well_known;
pub mod wire;
pub mod workloads;
pub mod yaml;

pub use intstr::IntOrString;
pub use meta::ObjectMeta;
pub use object::{Kind, Object, ObjectKey, Typed};
pub use quantity::Quantity;

/// The version of every skiff binary.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The JSON-schema generator the model derives (the `schema` feature).
#[cfg(feature = "schema")]
pub use schemars;
