//! Scheduler interface.
