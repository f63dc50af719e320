//! Fuzzes state.json loading (what every command after `create` reads back from the state
//! dir): serde of `coracle::state::Record`, then re-serialising what parsed. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = serde_json::from_slice::<coracle::state::Record>(data) {
        // What parsed must serialise again (state and list print it).
        let _ = serde_json::to_vec(&record);
        let _ = serde_json::to_vec(&record.state);
    }
});
