//! `kvsched serve --scheduler NAME [--views delta|full]`: serves a built-in scheduler over
//! stdin/stdout with the wire protocol of `spec/PROTOCOL.md` (the client side, in Rust).
//!
//! Reads `hello`, answers `ready` (asking for the scheduler's own information set), then answers
//! every `decide` with a `plan`, rebuilding the engine state the scheduler's view reads with
//! [`crate::conform::mirror::Mirror`]. Exits 0 on `end`, on `error` (logged to stderr) and at
//! the end of input; 1 when a message is malformed (after answering an `error`); 2 for usage.

use crate::conform::mirror::Mirror;
use crate::conform::protocol::{
    parse_to_scheduler, Decide, ErrorMsg, FromScheduler, PlanMsg, Ready, ToScheduler, Views,
    MAX_LINE_BYTES, PROTOCOL_VERSION,
};
use crate::schedulers;
use crate::sim::Scheduler;
use kvsched_spec::Information;
use std::io::{BufRead, BufWriter, Read, Write};
use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scheduler name (see `kvsched schedulers`).
    #[arg(long)]
    pub scheduler: String,
    /// Views to ask for: `delta` (only what changed) or `full`.
    #[arg(long, default_value = "delta")]
    pub views: String,
}

fn write_msg(out: &mut impl Write, msg: &FromScheduler) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, msg)?;
    out.write_all(b"\n")?;
    out.flush()
}

fn fail(out: &mut impl Write, code: &str, message: String) -> ExitCode {
    eprintln!("kvsched serve: {code}: {message}");
    let _ =
        write_msg(out, &FromScheduler::Error(ErrorMsg { code: code.into(), message, seq: None }));
    ExitCode::from(1)
}

/// Runs the subcommand.
pub fn run(args: &Args) -> ExitCode {
    let views = match args.views.as_str() {
        "delta" => Views::Delta,
        "full" => Views::Full,
        v => return super::input_error(format!("--views: expected delta or full, got {v:?}")),
    };
    let Some(mut sched) = schedulers::by_name(&args.scheduler) else {
        return super::input_error(format!("--scheduler: unknown {:?}", args.scheduler));
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    serve(&mut *sched, views, &mut input, &mut out)
}

/// A request of `d` without a prediction when the scheduler reads predictions: the run stops
/// (as the simulator's `MissingPrediction`), never a silent worst case.
fn missing_prediction(reads: Information, d: &Decide) -> Option<u32> {
    if reads != Information::Predicted {
        return None;
    }
    let mut waiting = d.arrived.iter().chain(d.waiting.iter().flatten());
    let missing = waiting.find(|q| q.predicted.is_none()).map(|q| q.id);
    missing.or_else(|| d.running.iter().flatten().find(|q| q.predicted.is_none()).map(|q| q.id))
}

/// Serves `sched` over `input`/`out` until `end`, `error` or end of input.
pub fn serve(
    sched: &mut dyn Scheduler,
    views: Views,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> ExitCode {
    let mut mirror: Option<Mirror> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.by_ref().take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line) {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(_) => {}
            Err(e) => return fail(out, "io", e.to_string()),
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            return fail(out, "bad_message", "line is not UTF-8".into());
        };
        if text.trim().is_empty() {
            continue;
        }
        let msg = match parse_to_scheduler(text) {
            Ok(m) => m,
            Err(e) => return fail(out, "bad_message", e),
        };
        let reply = match msg {
            ToScheduler::Hello(h) => match Mirror::new(&h, sched.information(), views) {
                Ok(m) => {
                    mirror = Some(m);
                    FromScheduler::Ready(Ready {
                        version: PROTOCOL_VERSION,
                        name: sched.name(),
                        information: Some(sched.information()),
                        views,
                    })
                }
                Err(e) => return fail(out, "bad_config", e),
            },
            ToScheduler::Decide(d) => {
                let Some(m) = mirror.as_mut() else {
                    return fail(out, "bad_message", "decide before hello".into());
                };
                if let Some(id) = missing_prediction(sched.information(), &d) {
                    let message = format!(
                        "r{id} has no \"predicted\" output length, and {} reads predictions; \
                         it is never charged a worst case: send \"predicted\" with every request",
                        sched.name()
                    );
                    return fail(out, "missing_prediction", message);
                }
                if let Err(e) = m.update(&d) {
                    return fail(out, "bad_message", e);
                }
                FromScheduler::Plan(PlanMsg::of(d.seq, &m.decide(sched)))
            }
            ToScheduler::End(_) => return ExitCode::SUCCESS,
            ToScheduler::Error(e) => {
                eprintln!("kvsched serve: the harness reported {}: {}", e.code, e.message);
                return ExitCode::SUCCESS;
            }
        };
        if write_msg(out, &reply).is_err() {
            return ExitCode::from(1);
        }
    }
}
