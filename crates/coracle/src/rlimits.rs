//! The container process's resource limits (`process.rlimits`). (Stub: being written.)

use oci_spec::runtime::Process;

/// Errors of the rlimits module.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// setrlimit failed.
    #[error("setrlimit {resource}: {source}")]
    Set {
        /// Which limit.
        resource: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// `process.rlimits`, checked.
#[derive(Debug, Clone, Default)]
pub struct Rlimits {}

impl Rlimits {
    /// Reads `process.rlimits`; a duplicate type is an error.
    pub fn from_spec(_process: &Process) -> Result<Self, RlimitError> {
        Ok(Self {})
    }
    /// Applies the limits to the calling process.
    pub fn apply(&self) -> Result<(), RlimitError> {
        Ok(())
    }
}
