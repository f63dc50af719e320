//! Fuzzes `exec --process process.json` parsing: `parse_spec::<Process>` then
//! `ProcessConfig::from_spec`. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(process) = coracle::spec::parse_spec::<oci_spec::runtime::Process>(data) else {
        return;
    };
    let _ = coracle::spec::ProcessConfig::from_spec(&process);
});
