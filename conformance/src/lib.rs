//! Helpers for the conformance tests: bundles, the binary under test, cleanup.
