//! Round-model instance (`kvsched opt`): TOML and JSON, validation and the resource budget.
#![no_main]
use kvsched_spec::rounds::RoundInstance;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = [toml::from_str::<RoundInstance>(text).ok(), kvsched_json(text)];
    for inst in parsed.into_iter().flatten() {
        let _ = inst.validate();
        let _ = kvsched::run::hindsight::budget_problems(&inst);
    }
});

fn kvsched_json(text: &str) -> Option<RoundInstance> {
    serde_json::from_str(text).ok()
}
