//! Fuzzes the parent/child sync message decoder (`Channel::recv` decodes one datagram of at
//! most 64 KiB with serde_json into `coracle::sync::Message`). Must never panic; what decodes
//! must encode and decode back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(64 * 1024)];
    if let Ok(msg) = serde_json::from_slice::<coracle::sync::Message>(data) {
        let Ok(bytes) = serde_json::to_vec(&msg) else {
            panic!("a decoded message does not encode: {msg:?}");
        };
        let back: Result<coracle::sync::Message, _> = serde_json::from_slice(&bytes);
        assert_eq!(back.ok(), Some(msg), "round trip changed the message");
    }
});
