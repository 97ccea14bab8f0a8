//! Protocol messages from the scheduler (`ready`, `plan`, `error`), and a plan's conversion.
#![no_main]
use kvsched::protocol::wire::{parse_from_scheduler, FromScheduler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(FromScheduler::Plan(p)) = parse_from_scheduler(text) {
        let _ = p.to_plan();
    }
});
