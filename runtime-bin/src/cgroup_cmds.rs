//! The cgroup commands: pause, resume (and later update, ps, events).

use std::path::Path;

use clap::Subcommand;
use coracle::Container;

use crate::Result;

/// Commands that act on a container's cgroup.
#[derive(Subcommand, Debug)]
pub enum CgroupCommand {
    /// Freeze every process of a container.
    Pause {
        /// The container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container id.
        id: String,
    },
}

/// Runs a cgroup command; returns the exit code.
pub fn run(root: &Path, cmd: &CgroupCommand) -> Result<u8> {
    match cmd {
        CgroupCommand::Pause { id } => Container::load(id, root)?.cgroup().freeze()?,
        CgroupCommand::Resume { id } => Container::load(id, root)?.cgroup().thaw()?,
    }
    Ok(0)
}
