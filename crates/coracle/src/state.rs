//! The state directory: one directory per container under the runtime root. (Stub.)

use serde::{Deserialize, Serialize};

/// Errors of the state module.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No container with this id.
    #[error("container {0} does not exist")]
    NotFound(String),
}

/// The OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// Running the user's program.
    Running,
    /// Frozen.
    Paused,
    /// Exited.
    Stopped,
}

/// The OCI state of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The status.
    pub status: Status,
}
