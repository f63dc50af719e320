//! Records the git commit for `coracle --version`, and hands the linker the order of the hot
//! functions (runtime-bin/hot-symbols.txt, made by benches/layout/hot-symbols.sh).
fn main() {
    // The functions a lifecycle runs, together at the start of .text: the kernel maps 64 KiB
    // around each page fault of the binary, so scattered hot code maps most of it. Names that
    // do not match (another toolchain, a debug build) are ignored.
    let order = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("hot-symbols.txt");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=coracle=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=coracle=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CORACLE_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/logs/HEAD");
}
