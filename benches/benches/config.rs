//! criterion micro-benchmarks of the pure parts on the hot path: loading and validating a
//! bundle's config.json (the `runc spec` config the lifecycle benchmark uses). The seccomp
//! compilation of Docker's default profile is in `seccomp.rs`.

#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../src/bundle.rs"]
#[allow(dead_code)]
mod bundle;

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn config(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("coracle-bench-config-{}", std::process::id()));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    bundle::write_bundle(&dir, &rootfs, &["/bin/true"], "/coracle-bench/x").unwrap();
    let text = std::fs::read(dir.join("config.json")).unwrap();

    c.bench_function("config.json parse (oci-spec)", |b| {
        b.iter(|| serde_json::from_slice::<oci_spec::runtime::Spec>(black_box(&text)).unwrap())
    });
    c.bench_function("config.json parse + validate (Config::from_spec)", |b| {
        b.iter(|| {
            let spec: oci_spec::runtime::Spec = serde_json::from_slice(black_box(&text)).unwrap();
            coracle::Config::from_spec(spec, Path::new(&dir)).unwrap()
        })
    });
    c.bench_function("Config::load (read + parse + validate)", |b| {
        b.iter(|| coracle::Config::load(black_box(&dir)).unwrap())
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

criterion_group!(benches, config);
criterion_main!(benches);
