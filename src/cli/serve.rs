//! `kvsched serve --scheduler NAME [--views delta|full]`: serves a built-in scheduler over
//! stdin/stdout with the wire protocol of `spec/PROTOCOL.md` (the client side, in Rust; the
//! loop is [`kvsched::protocol::serve()`]).
//!
//! Exits 0 on `end`, on `error` (logged to stderr) and at the end of input; 1 when a message
//! is malformed (after answering an `error`) or the answer cannot be written; 2 for usage.

use kvsched::protocol::wire::Views;
use kvsched::protocol::{serve, ServeEnd, ServeError};
use kvsched::schedulers;
use std::io::BufWriter;
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
    match serve(&mut *sched, views, &mut input, &mut out) {
        Ok(ServeEnd::EndOfInput | ServeEnd::End) => ExitCode::SUCCESS,
        Ok(ServeEnd::HarnessError(e)) => {
            eprintln!("kvsched serve: the harness reported {}: {}", e.code, e.message);
            ExitCode::SUCCESS
        }
        Err(ServeError::Rejected { code, message }) => {
            eprintln!("kvsched serve: {code}: {message}");
            ExitCode::from(1)
        }
        Err(ServeError::Write(_)) => ExitCode::from(1),
    }
}
