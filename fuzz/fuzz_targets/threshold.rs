//! Any metric name and expression either parse as a threshold or give an error; a
//! parsed threshold evaluates on empty metrics without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (metric, expr) = text.split_once('\n').unwrap_or(("http_req_duration", text));
    if let Ok(t) = kpress_engine::threshold::parse(metric, expr) {
        let m = kpress_engine::metrics::Metrics::default();
        let _ = t.evaluate(&m, std::time::Duration::from_secs(1));
    }
});
