//! skiff-images: the node's OCI image store.
//!
//! - [`content`]: sha256-addressed blobs, verified on every write, crash-safe.
//! - [`import`]: `docker save` and OCI layout archives and directories (the airgap path).
//! - [`registry`]: pulls from OCI distribution registries.
//! - [`docker_config`]: credentials from image pull Secrets (Docker's config formats).
//! - [`unpack`]: applies layers into snapshot directories, refusing paths that escape.
//! - [`store`]: named images, snapshots by chain ID, container root filesystems, GC.
//!
//! It knows nothing about pods: callers name root filesystems by their own keys.

pub mod content;
pub mod digest;
pub mod docker_config;
pub mod import;
pub mod oci;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use oci::{ImageConfig, Platform, RunConfig};
pub use reference::Reference;
pub use registry::{Progress, RegistryConfig};
pub use store::{GcReport, ImageError, ImageRecord, ImageStore, Rootfs, RootfsKind};
