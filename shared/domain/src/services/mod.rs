//! Services: orchestrate ports around the pure rules.

pub mod sync;
