//! Podman 4.3 (placeholder).

/// podman.
pub struct Podman;
