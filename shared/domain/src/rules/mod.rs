//! The SPEC's rules, one file per section. Each function names the rule IDs it implements.

pub mod catalog;
pub mod companies;
pub mod cursor;
pub mod lines;
pub mod mapping;
pub mod provisioning;
pub mod psa;
pub mod schedule;
pub mod settings;
pub mod twoway;
pub mod units;
pub mod usage;
pub mod webhooks;

pub use catalog::{catalog, rule, rule_ids, RuleDoc};
