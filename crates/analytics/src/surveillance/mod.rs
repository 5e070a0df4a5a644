//! Statistical detectors after R's `surveillance` package (1.26.0): each a pure function
//! over a series of counts, reproducing R's alarms and bounds (see docs/detection.md).

pub mod cusum;
pub mod ears;
pub mod farrington;
pub mod glm;

/// A seeded xorshift64 source of uniform numbers in [0, 1) for the detectors' property tests:
/// the same cases on every run and machine, no dependency.
#[cfg(test)]
pub(crate) fn test_uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}
