//! Shared vocabulary: labels, matchers, samples, time. Sits at the bottom of the
//! module graph and depends on nothing else in the crate.

pub mod labels;
pub mod matcher;
pub mod sample;
pub mod time;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{HistogramSample, STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};
pub use time::{Clock, ManualClock, SystemClock};
