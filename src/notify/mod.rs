//! Alert delivery. Takes [`Alert`] values and nothing more: it knows
//! nothing of rules, PromQL or storage.

pub mod alert;
pub mod alertmanager;

pub use alert::Alert;
pub use alertmanager::{AlertmanagerTarget, Notifier};
