//! Tests of the seccomp module.
