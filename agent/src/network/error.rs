//! What can go wrong with the node's network, each with what the agent was doing.

use std::io;

/// An error setting up or keeping the node's pod and Service network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The kernel refused a request (netlink, nftables, a sysctl, a namespace): `what`
    /// says which, in the terms of the object it was about.
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Something the network needs is not there (a loopback, the bridge, a veth).
    #[error("{0}")]
    Missing(String),
    /// The node's pod CIDR has no free address left.
    #[error("pod CIDR {0} is full")]
    Full(String),
    /// A CIDR that is not one (from the coordinator or the lease file).
    #[error("{0}")]
    Cidr(String),
    /// The thread that sets up a pod's interface inside its namespace panicked.
    #[error("pod network: setup thread panicked")]
    SetupPanicked,
    /// A blocking task of the network was cancelled or panicked.
    #[error(transparent)]
    Task(#[from] crate::util::TaskFailed),
}

impl NetError {
    /// The refusal of `what`.
    pub fn os(what: impl Into<String>, source: io::Error) -> NetError {
        NetError::Os {
            what: what.into(),
            source,
        }
    }
}
