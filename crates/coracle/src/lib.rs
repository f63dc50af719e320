//! coracle: an OCI container runtime as a library.
//!
//! The [`Container`] type drives the OCI lifecycle (create, start, kill, delete) of a container
//! described by a bundle (a directory holding `config.json` and a root filesystem). Every
//! operation works on a state directory (`root`, `/run/coracle` for the binary) that holds one
//! directory per container; there is no global state in the library.
//!
//! ```no_run
//! use coracle::{Container, CreateOptions, Status};
//! # fn main() -> Result<(), coracle::Error> {
//! let root = std::path::Path::new("/run/coracle-example");
//! let opts = CreateOptions::new("/path/to/bundle");
//! let mut container = Container::create("demo", root, &opts)?;
//! assert_eq!(container.state()?.status, Status::Created);
//! container.start()?;
//! let status = container.wait()?; // the container's exit status
//! println!("exited with {status}");
//! container.delete(false)?;
//! # Ok(()) }
//! ```
//!
//! Creating a container clones a process that runs code of this library until it execs the
//! container's program. Call [`Container::create`] from a single-threaded process (as the
//! `coracle` binary is): the child of a multi-threaded process could inherit a lock held by
//! another thread.

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod exec;
pub mod hooks;
mod init;
pub mod namespaces;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;
pub mod sys;
pub mod user;

pub use container::{Container, CreateOptions};
pub use error::Error;
pub use exec::{ExecOptions, ExecProcess};
pub use spec::Config;
pub use state::{State, Status};

/// The version of the OCI runtime-spec this crate implements.
pub const OCI_VERSION: &str = "1.3.0";
