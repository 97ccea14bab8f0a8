//! Engine per-step log (vLLM-style, `spec/TRACE.md`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kvsched_verify::engine_log::is_engine_log(data);
    let _ = kvsched_verify::engine_log::check_engine_log(data);
});
