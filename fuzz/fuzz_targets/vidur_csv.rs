//! Vidur-format request trace (CSV), with and without a Poisson rate.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = kvsched::workload::read_vidur_csv("t.csv", text, None, 1);
    let _ = kvsched::workload::read_vidur_csv("t.csv", text, Some(3.0), 1);
});
