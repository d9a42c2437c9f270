//! skiff's control plane: the store, the PKI and the API server over QUIC (the scheduler
//! and controllers arrive with their issue).

pub mod api;
pub mod nodes;
pub mod pki;
pub mod server;
pub mod store;
