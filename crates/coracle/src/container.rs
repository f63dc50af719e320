//! The container lifecycle. (Stub.)

use std::path::{Path, PathBuf};

use crate::state::State;

/// Errors of lifecycle operations.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Not yet written.
    #[error("not implemented")]
    Todo,
}

/// Options of [`Container::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The bundle directory.
    pub bundle: PathBuf,
}

impl CreateOptions {
    /// Options for `bundle`.
    pub fn new(bundle: impl Into<PathBuf>) -> Self {
        Self {
            bundle: bundle.into(),
        }
    }
}

/// A container in a state directory.
#[derive(Debug)]
pub struct Container {}

impl Container {
    /// Creates.
    pub fn create(_id: &str, _root: &Path, _opts: &CreateOptions) -> Result<Self, crate::Error> {
        Err(ContainerError::Todo.into())
    }
    /// State.
    pub fn state(&self) -> Result<State, crate::Error> {
        Err(ContainerError::Todo.into())
    }
    /// Start.
    pub fn start(&self) -> Result<(), crate::Error> {
        Err(ContainerError::Todo.into())
    }
    /// Wait.
    pub fn wait(&self) -> Result<i32, crate::Error> {
        Err(ContainerError::Todo.into())
    }
    /// Delete.
    pub fn delete(&self, _force: bool) -> Result<(), crate::Error> {
        Err(ContainerError::Todo.into())
    }
}
