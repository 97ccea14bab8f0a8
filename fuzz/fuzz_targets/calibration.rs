//! Calibration TOML.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = kvsched_spec::calibration::Calibration::parse("c.toml", text) {
        let _ = c.step_time.compile();
        let _ = c.to_toml();
    }
});
