//! The running half of `kvsched reproduce`: runs the experiments of the chosen claims (in
//! parallel, resumable from a checkpoint) and aggregates their [`ClaimResult`]s per claim into
//! a [`Report`], the contents of `results.json` (every number, with seeds and configuration).
//! `render` turns it into tables, `index.md` and the SVG figures, and writes the directory.
//!
//! A claim's verdict aggregates its sub-measurements: any *not supported* makes it not
//! supported; otherwise any *supported* makes it supported; otherwise it is not reproducible
//! here, with the reasons. Which sub-measurements count is the experiment row's
//! [`registry::Judge`] (all of them, or the first, headline result only). Claims without an
//! experiment get `not reproducible here (no experiment implemented yet)`.

use super::figures::Figure;
use super::registry::{self, ClaimSpec, Experiment};
use super::{ClaimResult, ClaimVerdict, Ctx, Output, Scale};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One claim in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimEntry {
    /// Claim ID.
    pub id: String,
    /// Statement (from `spec/CLAIMS.md`).
    pub statement: String,
    /// Source in the paper.
    pub source: String,
    /// The paper's value as written in `spec/CLAIMS.md`.
    pub paper_text: String,
    /// The paper's value as a number, where the headline measurement has one.
    pub paper: Option<f64>,
    /// Our headline value.
    pub measured: Option<f64>,
    /// Its interval.
    pub ci: Option<(f64, f64)>,
    /// Its confidence level (`None`: a range, not a statistical interval).
    pub ci_level: Option<f64>,
    /// The verdict. `results.json` writes it as two fields, as before it was an enum:
    /// `verdict` (its [`ClaimVerdict::code`]) and `reason` (empty when supported).
    #[serde(flatten, serialize_with = "verdict_fields")]
    pub verdict: ClaimVerdict,
    /// Figures that illustrate it.
    pub figures: Vec<String>,
    /// Experiments that measured it.
    pub experiments: Vec<String>,
    /// Every sub-measurement.
    pub results: Vec<ClaimResult>,
}

/// A claim's verdict as the `verdict` and `reason` fields of its entry in `results.json`.
fn verdict_fields<S: serde::Serializer>(v: &ClaimVerdict, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Fields<'a> {
        verdict: &'static str,
        reason: &'a str,
    }
    Fields { verdict: v.code(), reason: v.reason() }.serialize(s)
}

/// One experiment run.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentRecord {
    /// Name.
    pub name: String,
    /// Claims.
    pub claims: Vec<String>,
    /// Wall time (s).
    pub seconds: f64,
    /// Raw data behind its figures.
    pub data: serde_json::Value,
}

/// The whole report (`results.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// kvsched version.
    pub version: String,
    /// Scale.
    pub scale: Scale,
    /// Base seed of every experiment.
    pub seed: u64,
    /// Rayon threads used.
    pub threads: usize,
    /// The claims, in `spec/CLAIMS.md` order.
    pub claims: Vec<ClaimEntry>,
    /// The figures and their data.
    pub figures: Vec<Figure>,
    /// The experiments run.
    pub experiments: Vec<ExperimentRecord>,
}

impl Report {
    /// How many claims have the verdict `code` (a [`ClaimVerdict::code`]).
    pub fn count(&self, code: &str) -> usize {
        self.claims.iter().filter(|c| c.verdict.code() == code).count()
    }
}

/// The claims to report: all, or the given IDs (unknown IDs are an error).
pub fn select(ids: &[String]) -> Result<Vec<ClaimSpec>, String> {
    let all = registry::claims();
    if ids.is_empty() {
        return Ok(all);
    }
    let unknown: Vec<&String> = ids.iter().filter(|i| !all.iter().any(|c| &c.id == *i)).collect();
    if !unknown.is_empty() {
        return Err(format!("--claim: unknown ID(s) {unknown:?}; see spec/CLAIMS.md"));
    }
    Ok(all.into_iter().filter(|c| ids.contains(&c.id)).collect())
}

/// Runs the experiments of `claims` (in parallel, each once) and builds the report. `log`
/// receives a line per finished experiment.
pub fn reproduce(ctx: &Ctx, claims: &[ClaimSpec], log: &(dyn Fn(&str) + Sync)) -> Report {
    reproduce_resumable(ctx, claims, log, None).expect("no checkpoint, no I/O")
}

/// One finished experiment, as a line of the checkpoint file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpointed {
    experiment: String,
    ctx: Ctx,
    seconds: f64,
    output: Output,
}

/// The name of the checkpoint file in a report directory.
pub const CHECKPOINT: &str = "checkpoint.jsonl";

/// [`reproduce`] with a checkpoint: every finished experiment is appended (one JSON line,
/// flushed) to `checkpoint`; experiments already there for the same scale and seed are not run
/// again. A process killed at any point (SIGINT, SIGTERM, SIGKILL) leaves a checkpoint whose
/// complete lines are valid; a line cut short is ignored, and an experiment is never counted
/// twice (the first line for a name wins).
pub fn reproduce_resumable(
    ctx: &Ctx,
    claims: &[ClaimSpec],
    log: &(dyn Fn(&str) + Sync),
    checkpoint: Option<&Path>,
) -> Result<Report, String> {
    let mut todo: Vec<Experiment> = Vec::new();
    for c in claims {
        for e in registry::for_claim(&c.id) {
            if !todo.iter().any(|t| t.name == e.name) {
                todo.push(e);
            }
        }
    }
    let mut done: Vec<(Experiment, Output, f64)> = Vec::new();
    let mut file = None;
    if let Some(path) = checkpoint {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // Keep only whole lines: a torn last line is dropped from the file too.
        let mut kept = String::new();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let Ok(c) = serde_json::from_str::<Checkpointed>(line) else { continue };
            let Some(e) = todo.iter().find(|e| e.name == c.experiment) else { continue };
            if c.ctx != *ctx || done.iter().any(|d| d.0.name == e.name) {
                continue;
            }
            log(&format!("{:<20} (from {})", e.name, path.display()));
            done.push((*e, c.output, c.seconds));
            kept += line;
        }
        std::fs::write(path, kept).map_err(|e| format!("{}: {e}", path.display()))?;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file = Some(std::sync::Mutex::new(f));
    }
    let names: Vec<&str> = todo.iter().map(|e| e.name).collect();
    todo.retain(|e| !done.iter().any(|d| d.0.name == e.name));
    let outputs: Vec<(Experiment, Output, f64)> = todo
        .par_iter()
        .map(|e| {
            let t = std::time::Instant::now();
            let out = (e.run)(ctx);
            let secs = t.elapsed().as_secs_f64();
            debug_assert!(
                out.figures.iter().map(|f| f.file.as_str()).eq(e.figures.iter().copied()),
                "{}: the figures drawn are not those its row names",
                e.name
            );
            if let Some(f) = &file {
                let c = Checkpointed {
                    experiment: e.name.to_string(),
                    ctx: *ctx,
                    seconds: secs,
                    output: out.clone(),
                };
                let mut line = serde_json::to_string(&c).unwrap_or_default();
                line.push('\n');
                if let Ok(mut f) = f.lock() {
                    use std::io::Write as _;
                    // One write per line; a failure only costs the resume of this experiment.
                    let _ = f.write_all(line.as_bytes()).and_then(|()| f.sync_data());
                }
            }
            log(&format!("{:<20} {:>8.1} s  ({})", e.name, secs, e.claims.join(", ")));
            (*e, out, secs)
        })
        .collect();
    done.extend(outputs);
    // The experiments in the order of an uninterrupted run, however they were split.
    done.sort_by_key(|d| names.iter().position(|n| *n == d.0.name));
    Ok(assemble(ctx, claims, done))
}

/// Builds the report from experiment outputs.
pub fn assemble(
    ctx: &Ctx,
    claims: &[ClaimSpec],
    outputs: Vec<(Experiment, Output, f64)>,
) -> Report {
    let wanted = |id: &String| claims.iter().any(|c| &c.id == id);
    let figures: Vec<Figure> = outputs
        .iter()
        .flat_map(|o| o.1.figures.iter())
        .filter(|f| f.claims.iter().any(wanted))
        .cloned()
        .collect();
    let entries = claims
        .iter()
        .map(|c| {
            let of = |o: &Output| -> Vec<ClaimResult> {
                o.results.iter().filter(|r| r.id == c.id).cloned().collect()
            };
            let results: Vec<ClaimResult> = outputs.iter().flat_map(|o| of(&o.1)).collect();
            // Each experiment's row says which of its results the verdict rests on.
            let judged: Vec<ClaimResult> =
                outputs.iter().flat_map(|o| o.0.judge.judged(&of(&o.1)).to_vec()).collect();
            let figs = figures.iter().filter(|f| f.claims.contains(&c.id)).map(|f| f.file.clone());
            let exps = outputs.iter().filter(|o| o.0.claims.contains(&c.id.as_str()));
            let exps = exps.map(|o| o.0.name.to_string()).collect();
            entry(c, results, &judged, figs.collect(), exps)
        })
        .collect();
    let experiments = outputs
        .into_iter()
        .map(|(e, o, seconds)| ExperimentRecord {
            name: e.name.into(),
            claims: e.claims.iter().map(|c| c.to_string()).collect(),
            seconds,
            data: o.data,
        })
        .collect();
    Report {
        version: env!("CARGO_PKG_VERSION").into(),
        scale: ctx.scale,
        seed: ctx.seed,
        threads: rayon::current_num_threads(),
        claims: entries,
        figures,
        experiments,
    }
}

/// Aggregates a claim's results into its entry; its verdict rests on `judged` (the results
/// its experiments' [`registry::Judge`] keeps).
pub fn entry(
    c: &ClaimSpec,
    results: Vec<ClaimResult>,
    judged: &[ClaimResult],
    figures: Vec<String>,
    experiments: Vec<String>,
) -> ClaimEntry {
    let not_sup: Vec<String> = judged
        .iter()
        .filter_map(|r| match &r.verdict {
            ClaimVerdict::NotSupported(why) => Some(label_reason(r, why)),
            _ => None,
        })
        .collect();
    let not_rep: Vec<String> = judged
        .iter()
        .filter_map(|r| match &r.verdict {
            ClaimVerdict::NotReproducible(why) => Some(label_reason(r, why)),
            _ => None,
        })
        .collect();
    let any_sup = judged.iter().any(|r| r.verdict == ClaimVerdict::Supported);
    let verdict = if results.is_empty() {
        ClaimVerdict::NotReproducible(registry::missing_reason(&c.id))
    } else if !not_sup.is_empty() {
        ClaimVerdict::NotSupported(not_sup.join("; "))
    } else if any_sup {
        ClaimVerdict::Supported
    } else {
        ClaimVerdict::NotReproducible(not_rep.join("; "))
    };
    let head = results.iter().find(|r| r.label.is_empty()).or(results.first());
    ClaimEntry {
        id: c.id.clone(),
        statement: c.statement.clone(),
        source: c.source.clone(),
        paper_text: c.paper_value.clone(),
        paper: head.and_then(|r| r.paper),
        measured: head.and_then(|r| r.measured),
        ci: head.and_then(|r| r.ci),
        ci_level: head.and_then(|r| r.ci_level),
        verdict,
        figures,
        experiments,
        results,
    }
}

fn label_reason(r: &ClaimResult, why: &str) -> String {
    if r.label.is_empty() {
        why.to_string()
    } else {
        format!("{}: {why}", r.label)
    }
}
