//! Any text given as a scenario file either parses or yields a `ScenarioError`; the
//! parser never panics, and every problem it reports carries a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = kpress_engine::scenario::parse("fuzz.yaml", text, &[]) {
        assert!(!e.problems.is_empty());
        assert!(e.problems.iter().all(|p| !p.message.is_empty()));
        let _ = e.to_string();
    }
});
