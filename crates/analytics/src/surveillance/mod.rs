//! Statistical detectors after R's `surveillance` package (1.26.0): each a pure function
//! over a series of counts, reproducing R's alarms and bounds (see docs/detection.md).

pub mod cusum;
pub mod ears;
pub mod farrington;
pub mod glm;
