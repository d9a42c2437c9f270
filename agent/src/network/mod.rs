//! The node's network: the pod bridge, veths and address leases ([`pod_net`]), the routes or
//! VXLAN overlay to other nodes' pods ([`overlay`], pure), and the node's nftables table
//! ([`nft`]), over a netlink socket ([`netlink`]); their failures are [`NetError`]s.

mod error;
mod netlink;
pub mod nft;
pub mod overlay;
pub mod pod_net;

pub use error::NetError;
