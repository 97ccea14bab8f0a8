//! Trace JSONL (`kvsched check-trace`): parse and replay against the spec.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kvsched_verify::check_trace(data);
});
