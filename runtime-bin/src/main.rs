//! The `coracle` binary: runc's command line over the coracle library.
fn main() {}
