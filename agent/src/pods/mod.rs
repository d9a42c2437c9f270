//! The pods bound to this node: one worker per pod ([`worker`]) executes what a pure
//! [`plan`] decides (sandbox, init order, restarts with back-off, probes' verdicts, graceful
//! stop); [`podspec`] turns a pod's spec into the runtime's configs (with
//! [`downward`] for what the downward API gives), [`probe`] runs the
//! probes, and [`status`] computes the pod's phase and conditions.

pub mod downward;
pub mod manage;
pub mod plan;
pub mod podspec;
pub mod probe;
pub mod status;
pub mod worker;
