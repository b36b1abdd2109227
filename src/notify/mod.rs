//! Alert delivery. Takes [`Alert`] values and nothing more: it knows
//! nothing of rules, PromQL or storage.

pub mod alert;

pub use alert::Alert;
