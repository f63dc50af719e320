//! criterion micro-benchmarks of the seccomp work `create` does before the clone: Docker's
//! default profile, converted to the OCI form as dockerd does (x86_64, its default capabilities),
//! parsed into oci-spec's `LinuxSeccomp`, and compiled to BPF (`Program::from_spec`).

#![allow(missing_docs, clippy::unwrap_used)]

use coracle::seccomp::docker::{to_oci, DockerArch, KernelVersion, DEFAULT_CAPS};
use coracle::seccomp::Program;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use oci_spec::runtime::LinuxSeccomp;

const DOCKER_DEFAULT: &str =
    include_str!("../../crates/coracle/src/seccomp/testdata/docker-default.json");

fn seccomp(c: &mut Criterion) {
    let docker: serde_json::Value = serde_json::from_str(DOCKER_DEFAULT).unwrap();
    let kernel = KernelVersion::running().unwrap();
    let oci = to_oci(&docker, DockerArch::AMD64, DEFAULT_CAPS, kernel).unwrap();
    // As it stands in a config.json.
    let text = serde_json::to_vec(&oci).unwrap();
    let spec: LinuxSeccomp = serde_json::from_slice(&text).unwrap();

    c.bench_function(
        "seccomp: Docker default parse (oci-spec LinuxSeccomp)",
        |b| b.iter(|| serde_json::from_slice::<LinuxSeccomp>(black_box(&text)).unwrap()),
    );
    c.bench_function(
        "seccomp: Docker default compile (Program::from_spec)",
        |b| b.iter(|| Program::from_spec(black_box(&spec)).unwrap()),
    );
    c.bench_function("seccomp: Docker default parse + compile", |b| {
        b.iter(|| {
            let spec: LinuxSeccomp = serde_json::from_slice(black_box(&text)).unwrap();
            Program::from_spec(&spec).unwrap()
        })
    });
}

criterion_group!(benches, seccomp);
criterion_main!(benches);
