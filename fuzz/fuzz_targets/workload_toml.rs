//! Workload TOML: parse, then everything a parsed workload feeds (fluid, a short generation).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(w) = kvsched_spec::WorkloadFile::parse("w.toml", text) {
        let _ = kvsched_spec::fluid::FluidSolution::from_workload(&w);
        let _ = kvsched::workload::try_generate(&w, kvsched::workload::Amount::Requests(8), 1);
    }
});
