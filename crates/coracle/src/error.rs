//! The crate's top-level error: one variant per module error.

use crate::cgroups::CgroupError;
use crate::container::ContainerError;
use crate::namespaces::NamespaceError;
use crate::spec::SpecError;
use crate::state::StateError;

/// Any error of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// A lifecycle operation.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Entering or setting up namespaces.
    #[error(transparent)]
    Namespaces(#[from] NamespaceError),
    /// A cgroup operation.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}
