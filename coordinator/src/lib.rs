//! skiff's control plane: the store, the PKI, the API server over QUIC, the scheduler
//! and the controllers.

pub mod bucket;
pub mod controllers;
pub mod expiry;
pub mod front_door;
pub mod http;
pub mod hub;
pub mod nodes;
pub mod pki;
pub mod requests;
pub mod sa_token;
pub mod sched;
pub mod server;
pub mod services;
pub mod store;

/// The hash map of the coordinator's hot paths: seeded per process like std's, several
/// times faster to hash short keys (names, uids) than std's SipHash.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
