//! skiff's transport: QUIC endpoints and UDP sockets ([`udp`]), TLS with pinned CAs and
//! node certificates ([`tls`]), length-prefixed frames with a hard size limit checked
//! before allocation ([`frames`]), the credentials file ([`config`], [`files`]), and the
//! API client on top ([`client`]), shared by the CLI, the agent and the tests. The
//! coordinator serves on the same endpoints, TLS and frames.

pub mod client;
pub mod config;
pub mod files;
pub mod frames;
pub mod tls;
pub mod udp;

pub use client::*;
