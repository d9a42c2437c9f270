//! skiff's control plane: the store, the PKI, the API server over QUIC, the scheduler
//! and the controllers.

pub mod api;
pub mod controllers;
pub mod hub;
pub mod nodes;
pub mod pki;
pub mod sched;
pub mod server;
pub mod services;
pub mod store;
