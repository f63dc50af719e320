//! Fuzzes mount option parsing: the input is split on `,` and NUL into the words of a
//! `mounts[].options` list. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text.split([',', '\0']).collect();
    let _ = coracle::rootfs::options::MountOptions::parse(&words);
    // The whole input as one word, too (an option with odd characters).
    let _ = coracle::rootfs::options::MountOptions::parse(&[text.as_ref()]);
});
