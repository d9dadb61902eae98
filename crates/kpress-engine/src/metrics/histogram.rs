//! The latency histogram every sample lands in: fixed-size HDR (3 significant digits,
//! microseconds, 1 µs to 1 hour), so memory does not grow with run length and histograms
//! from any number of threads, processes or pods add up exactly.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Microseconds; the histogram's unit.
pub type Latency = Histogram<u64>;

const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// A new empty latency histogram.
pub fn new_latency() -> Latency {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Records `us`, clamping to the histogram's range so an absurd value (a clock jump,
/// an hour-long hang) is counted at the edge instead of lost.
#[inline]
pub fn record(h: &mut Latency, us: u64) {
    let v = us.clamp(LOWEST_US, HIGHEST_US);
    // In range by construction, so this cannot fail.
    let _ = h.record(v);
}

/// Lossless text form: the HdrHistogram V2 (deflate) encoding, base64.
pub fn encode(h: &Latency) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec only fails for histograms larger than an i32 can count.
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        return String::new();
    }
    STANDARD.encode(bytes)
}

/// Inverse of [`encode`]; an empty string is an empty histogram.
pub fn decode(text: &str) -> Result<Latency, String> {
    if text.is_empty() {
        return Ok(new_latency());
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let decoded: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram is not a valid HdrHistogram V2 encoding: {e:?}"))?;
    // Re-home the samples into our standard bounds so later additions never fail.
    let mut h = new_latency();
    for v in decoded.iter_recorded() {
        let _ = h.record_n(
            v.value_iterated_to().clamp(LOWEST_US, HIGHEST_US),
            v.count_at_value(),
        );
    }
    Ok(h)
}

/// Adds `other` into `into`; both use the standard bounds, so this cannot fail.
pub fn add(into: &mut Latency, other: &Latency) {
    let _ = into.add(other);
}

/// Percentile in milliseconds (0 for an empty histogram).
pub fn percentile_ms(h: &Latency, p: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64 / 1000.0
}

pub fn min_ms(h: &Latency) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.min() as f64 / 1000.0
    }
}

pub fn max_ms(h: &Latency) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.max() as f64 / 1000.0
    }
}

pub fn mean_ms(h: &Latency) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.mean() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_accepted() {
        assert!(
            Histogram::<u64>::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS).is_ok()
        );
    }

    #[test]
    fn encoding_is_lossless() {
        let mut h = new_latency();
        for v in [1, 7, 150, 150, 9_999, 1_000_000, 7_200_000_000] {
            record(&mut h, v);
        }
        let back = decode(&encode(&h)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, h);
        assert_eq!(back.max(), h.highest_equivalent(HIGHEST_US));
        assert!(decode("not base64!").is_err());
        assert!(decode(&STANDARD.encode(b"garbage")).is_err());
    }

    #[test]
    fn adding_equals_recording_together() {
        let (mut a, mut b, mut all) = (new_latency(), new_latency(), new_latency());
        for v in 1..2000u64 {
            let target = if v % 3 == 0 { &mut a } else { &mut b };
            record(target, v * 37);
            record(&mut all, v * 37);
        }
        add(&mut a, &b);
        assert_eq!(a, all);
        assert_eq!(percentile_ms(&a, 99.0), percentile_ms(&all, 99.0));
    }
}
