//! The agent's errors: what stops the daemon from starting or an operator's command
//! (`skiff-agent image|run|ps|rm|clean-network`) from finishing. The pod worker's steps
//! report their failures as the messages their Events and container statuses carry.

use std::io;

/// Why the agent, or one of its commands, could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or setting the agent cannot use (the message names it).
    #[error("{0}")]
    Flag(String),
    /// A file or system call failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A file the agent reads is not what it should be.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// The container runtime refused.
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    /// The image store or a registry refused.
    #[error(transparent)]
    Image(#[from] skiff_images::ImageError),
    /// The node's network could not be set up or removed.
    #[error(transparent)]
    Network(#[from] crate::network::NetError),
    /// The node's credentials file cannot be read.
    #[error(transparent)]
    Credentials(#[from] skiff_transport::config::ConfigError),
    /// The coordinator refused the join token, or could not be reached to join.
    #[error("joining {server}: {source}")]
    Join {
        server: String,
        #[source]
        source: skiff_transport::ClientError,
    },
    /// A file the agent writes could not be written.
    #[error("saving {path}: {source}")]
    Save {
        path: String,
        #[source]
        source: io::Error,
    },
    /// A signal mask or another system call through nix.
    #[error(transparent)]
    Sys(#[from] nix::Error),
}

impl Error {
    /// A flag with a value the agent cannot use.
    pub fn flag(message: impl Into<String>) -> Error {
        Error::Flag(message.into())
    }
}
