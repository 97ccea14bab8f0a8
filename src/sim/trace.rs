//! Writes the JSON-lines trace (`spec/TRACE.md`).

use super::core::StepDone;
use kvsched_spec::trace::{TraceRecord, TRACE_FORMAT_VERSION};
use kvsched_spec::{BatchItem, ModelConfig, Nanos, Request, RequestId};
use std::io::{BufWriter, Write};

pub(super) struct Writer {
    out: BufWriter<Box<dyn Write>>,
    error: Option<String>,
}

impl Writer {
    pub(super) fn new(out: Box<dyn Write>) -> Writer {
        Writer { out: BufWriter::new(out), error: None }
    }

    fn write(&mut self, record: &TraceRecord) {
        if self.error.is_some() {
            return;
        }
        let line = serde_json::to_string(record).expect("trace records serialize");
        if let Err(e) = writeln!(self.out, "{line}") {
            self.error = Some(e.to_string());
        }
    }

    pub(super) fn header(
        &mut self,
        config: &ModelConfig,
        scheduler: &str,
        seed: Option<u64>,
        n: usize,
    ) {
        self.write(&TraceRecord::Header {
            format_version: TRACE_FORMAT_VERSION,
            config: config.clone(),
            scheduler: scheduler.to_string(),
            seed,
            requests: Some(n as u64),
        });
    }

    pub(super) fn arrive(&mut self, t: Nanos, r: &Request) {
        self.write(&TraceRecord::Arrive {
            t,
            id: r.id,
            arrival: r.arrival_ns,
            prompt: r.prompt_tokens,
            output: r.output_tokens,
            predicted: r.predicted_output_tokens,
            class: r.class,
        });
    }

    pub(super) fn evict(&mut self, t: Nanos, id: RequestId) {
        self.write(&TraceRecord::Evict { t, id });
    }

    pub(super) fn step(&mut self, done: &StepDone, items: &[BatchItem]) {
        self.write(&TraceRecord::Step {
            t: done.start_ns,
            dur: done.duration_ns,
            repeat: done.repeat,
            items: items.to_vec(),
            kv: done.kv_peak,
            done: done.completed.clone(),
        });
    }

    pub(super) fn idle(&mut self, t: Nanos, until: Nanos) {
        self.write(&TraceRecord::Idle { t, until });
    }

    pub(super) fn end(&mut self, t: Nanos, completed: u64) {
        self.write(&TraceRecord::End { t, completed });
    }

    pub(super) fn finish(&mut self) -> Result<(), String> {
        if let Err(e) = self.out.flush() {
            self.error.get_or_insert(e.to_string());
        }
        self.error.take().map_or(Ok(()), Err)
    }
}
