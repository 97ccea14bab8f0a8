//! Protocol messages from the harness (`hello`, `decide`, `end`, `error`): each line parsed as
//! `serve` reads it, and the whole input fed to `kvsched serve`'s loop (a built-in policy
//! behind the protocol's replica), which must answer or fail cleanly, never panic.
#![no_main]
use kvsched::protocol::wire::{parse_to_scheduler, Views};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            let _ = parse_to_scheduler(line);
        }
    }
    let mut sched = kvsched::schedulers::by_name("vllm-v0").expect("built in");
    let mut out = Vec::new();
    let _ = kvsched::protocol::serve(sched.as_mut(), Views::Full, &mut &data[..], &mut out);
});
