//! The container process's capability sets. (Stub: being written.)

use oci_spec::runtime::Process;

/// Errors of the capabilities module.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A capability operation failed.
    #[error("{op}: {source}")]
    Caps {
        /// What was done.
        op: &'static str,
        /// Why it failed.
        #[source]
        source: caps::errors::CapsError,
    },
}

/// `process.capabilities`, checked: the five sets.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {}

impl Capabilities {
    /// Reads `process.capabilities` (absent: every set empty).
    pub fn from_spec(_process: &Process) -> Result<Self, CapsError> {
        Ok(Self {})
    }
}
