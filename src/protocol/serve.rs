//! Serving a [`Scheduler`] over the wire protocol of `spec/PROTOCOL.md`: the client side, in
//! Rust (the library half of `kvsched serve`).
//!
//! [`serve`] reads `hello`, answers `ready` (asking for the scheduler's own information set),
//! then answers every `decide` with a `plan`, rebuilding the engine state the scheduler's view
//! reads with a [`Replica`]. It returns at `end`, at the harness's `error` and at the end of
//! input; a malformed message is answered with an `error` message and returned as
//! [`ServeError::Rejected`].

use super::replica::Replica;
use super::wire::{
    parse_to_scheduler, ErrorMsg, FromScheduler, PlanMsg, Ready, ToScheduler, Views,
    MAX_LINE_BYTES, PROTOCOL_VERSION,
};
use crate::sim::Scheduler;
use std::io::{BufRead, Read, Write};

/// How a session that was served to its end ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServeEnd {
    /// The input ended.
    EndOfInput,
    /// The harness sent `end`: the run finished normally.
    End,
    /// The harness sent `error`: it rejected a decision or a message, and the run is over.
    HarnessError(ErrorMsg),
}

/// Why serving stopped early.
#[derive(Debug)]
pub enum ServeError {
    /// A message was malformed or out of turn (or the input unreadable); it was answered with
    /// an `error` message carrying this code (`bad_message`, `bad_config` or `io`).
    Rejected {
        /// The code sent.
        code: &'static str,
        /// The detail sent.
        message: String,
    },
    /// Writing to the harness failed.
    Write(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Rejected { code, message } => write!(f, "{code}: {message}"),
            ServeError::Write(e) => write!(f, "writing to the harness: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

fn write_msg(out: &mut impl Write, msg: &FromScheduler) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, msg)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Answers the harness with an `error` message (best effort) and returns it as the error.
fn reject(out: &mut impl Write, code: &'static str, message: String) -> ServeError {
    let error = ErrorMsg { code: code.into(), message: message.clone(), seq: None };
    let _ = write_msg(out, &FromScheduler::Error(error));
    ServeError::Rejected { code, message }
}

/// Serves `sched` over `input`/`out` until `end`, `error` or end of input.
pub fn serve(
    sched: &mut dyn Scheduler,
    views: Views,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<ServeEnd, ServeError> {
    let mut replica: Option<Replica> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.by_ref().take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line) {
            Ok(0) => return Ok(ServeEnd::EndOfInput),
            Ok(_) => {}
            Err(e) => return Err(reject(out, "io", e.to_string())),
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            return Err(reject(out, "bad_message", "line is not UTF-8".into()));
        };
        if text.trim().is_empty() {
            continue;
        }
        let msg = match parse_to_scheduler(text) {
            Ok(m) => m,
            Err(e) => return Err(reject(out, "bad_message", e)),
        };
        let reply = match msg {
            ToScheduler::Hello(h) => match Replica::new(&h, sched.information(), views) {
                Ok(m) => {
                    replica = Some(m);
                    FromScheduler::Ready(Ready {
                        version: PROTOCOL_VERSION,
                        name: sched.name(),
                        information: Some(sched.information()),
                        views,
                    })
                }
                Err(e) => return Err(reject(out, "bad_config", e)),
            },
            ToScheduler::Decide(d) => {
                let Some(m) = replica.as_mut() else {
                    return Err(reject(out, "bad_message", "decide before hello".into()));
                };
                if let Err(e) = m.update(&d) {
                    return Err(reject(out, "bad_message", e));
                }
                FromScheduler::Plan(PlanMsg::of(d.seq, &m.decide(sched)))
            }
            ToScheduler::End(_) => return Ok(ServeEnd::End),
            ToScheduler::Error(e) => return Ok(ServeEnd::HarnessError(e)),
        };
        write_msg(out, &reply).map_err(ServeError::Write)?;
    }
}
