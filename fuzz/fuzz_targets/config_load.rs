//! Fuzzes config.json loading and validation: `parse_spec` on arbitrary bytes, then
//! `Config::from_spec` against a fixed bundle directory with an empty rootfs.
//! Must never panic, hang or allocate without bound.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A bundle directory with a `rootfs` directory, made once per fuzzing process.
fn bundle() -> &'static PathBuf {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("coracle-fuzz-bundle-{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir.join("rootfs"));
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = coracle::spec::parse_spec::<oci_spec::runtime::Spec>(data) else {
        return;
    };
    let _ = coracle::spec::Config::from_spec(spec, bundle());
});
