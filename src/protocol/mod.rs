//! The scheduler wire protocol of `spec/PROTOCOL.md`, both ends of it apart from the judging:
//! the messages and their parsers ([`wire`]), the client side's replica of the engine state
//! ([`replica`]), and the loop that serves any [`crate::sim::Scheduler`] over a pair of streams
//! ([`serve`], behind `kvsched serve`). The harness that runs a scheduler through the protocol
//! and judges it lives in `conform`.

pub mod replica;
pub mod serve;
pub mod wire;

pub use replica::Replica;
pub use serve::{serve, ServeEnd, ServeError};
pub use wire::{PROTOCOL_NAME, PROTOCOL_VERSION};
