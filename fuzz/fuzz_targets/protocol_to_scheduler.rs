//! Protocol messages from the harness (`hello`, `decide`, `end`, `error`), as `serve` reads them.
#![no_main]
use kvsched::conform::protocol::parse_to_scheduler;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_to_scheduler(text);
});
