//! Parameter sweeps that scale out: a grid of (workload file, scheduler, rate scale, seed),
//! run in parallel with rayon, appended row by row to a results file, resumable, shardable and
//! mergeable.
//!
//! - The grid ([`Sweep::jobs`]) is ordered workload, scheduler, rate scale, seed (seed
//!   innermost); job `k` belongs to shard `I/N` when `k % N == I`.
//! - [`run`] runs the jobs of a shard not yet in the results file, in chunks: each chunk is an
//!   indexed `par_iter` collected in grid order, then appended (one row per line, flushed), so
//!   the file's order does not depend on the thread count and an interruption loses at most the
//!   chunk in flight. A truncated last line (a row cut by the interruption) is dropped on
//!   restart; every row is keyed by `(config, seed)` and done keys are skipped.
//! - [`merge`] combines shard files and lists missing and duplicated jobs.
//!
//! Formats: JSON lines (`.jsonl`, `.json`) or CSV (`.csv`), chosen by the file extension.
//! Randomness: each job's requests come from `kvsched::workload::generate` with the job's seed.

use crate::run::{Requests, RunSpec, WorkloadSource};
use crate::schedulers;
use indicatif::{ProgressBar, ProgressStyle};
use kvsched_spec::fluid::FluidSolution;
use kvsched_spec::WorkloadFile;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the rate scales multiply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelativeTo {
    /// The workload file's rates.
    #[default]
    File,
    /// The fluid `lambda_max` of the file's mix (`1.0` is the fluid stability boundary).
    LambdaMax,
}

/// A sweep specification (TOML). Paths are relative to the spec file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Workload files.
    pub workloads: Vec<String>,
    /// Scheduler names (`kvsched schedulers`); WAIT policies get fluid-designed thresholds.
    pub schedulers: Vec<String>,
    /// Rate scales.
    pub rate_scales: Vec<f64>,
    /// What the rate scales multiply.
    #[serde(default)]
    pub relative_to: RelativeTo,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Requests per run.
    pub requests: u64,
    /// Measurement window (centred fraction of requests by arrival).
    #[serde(default = "half")]
    pub window: f64,
}

fn half() -> f64 {
    0.5
}

/// A spec with its workloads loaded.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The spec.
    pub spec: SweepSpec,
    /// `(name as written in the spec, workload)`.
    pub workloads: Vec<(String, WorkloadFile)>,
}

/// One grid point with its seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Index in the grid.
    pub index: usize,
    /// Index of the workload.
    pub workload: usize,
    /// Scheduler name.
    pub scheduler: String,
    /// Rate scale as written.
    pub rate_scale: f64,
    /// Seed.
    pub seed: u64,
}

/// One result row, keyed by `(config, seed)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Fingerprint of the sweep spec (rows of different sweeps never mix).
    pub sweep: String,
    /// Job index in the grid.
    pub job: usize,
    /// Jobs in the grid.
    pub jobs: usize,
    /// Configuration id: `workload|scheduler|xscale`.
    pub config: String,
    /// Seed.
    pub seed: u64,
    /// Workload name.
    pub workload: String,
    /// Scheduler.
    pub scheduler: String,
    /// Rate scale as written in the spec.
    pub rate_scale: f64,
    /// Total arrival rate of the run (req/s).
    pub rate_per_s: f64,
    /// Requests.
    pub requests: u64,
    /// Completed requests.
    pub completed: u64,
    /// Mean latency over the window (s).
    pub latency_mean_s: f64,
    /// Median latency (s).
    pub latency_p50_s: f64,
    /// 99th percentile latency (s).
    pub latency_p99_s: f64,
    /// Mean TTFT (s).
    pub ttft_mean_s: f64,
    /// Output tokens of completed requests per simulated second.
    pub throughput_tokens_per_s: f64,
    /// Evictions.
    pub evictions: u64,
    /// Evictions / admissions.
    pub restart_rate: f64,
    /// Time-averaged KV use / capacity.
    pub kv_utilization_mean: f64,
    /// Simulated seconds.
    pub simulated_time_s: f64,
    /// Why the run stopped early (empty if it did not).
    pub error: String,
}

impl Row {
    /// The key `(config, seed)`.
    pub fn key(&self) -> (String, u64) {
        (self.config.clone(), self.seed)
    }
}

impl Sweep {
    /// Parses a spec file and loads its workloads.
    pub fn load(path: &Path) -> Result<Sweep, String> {
        let text = crate::workload::read_file(path)?;
        let spec: SweepSpec =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut workloads = Vec::new();
        for w in &spec.workloads {
            let p = dir.join(w);
            let file =
                WorkloadFile::parse(&p.display().to_string(), &crate::workload::read_file(&p)?)
                    .map_err(|e| e.to_string())?;
            workloads.push((w.clone(), file));
        }
        Sweep::new(spec, workloads)
    }

    /// A sweep from a spec and loaded workloads (checked).
    pub fn new(spec: SweepSpec, workloads: Vec<(String, WorkloadFile)>) -> Result<Sweep, String> {
        for s in &spec.schedulers {
            if schedulers::by_name(s).is_none() {
                return Err(format!("schedulers: unknown {s:?} (see `kvsched schedulers`)"));
            }
        }
        if let Some(x) = spec.rate_scales.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(format!("rate_scales: expected positive numbers, got {x}"));
        }
        if spec.seeds.is_empty() || spec.requests == 0 || workloads.is_empty() {
            return Err("workloads, seeds and requests must be non-empty".into());
        }
        let max = crate::workload::MAX_HELD_REQUESTS;
        if spec.requests > max {
            return Err(format!("requests: at most {max} (held in memory), got {}", spec.requests));
        }
        if !(spec.window.is_finite() && spec.window > 0.0 && spec.window <= 1.0) {
            return Err(format!("window: expected a fraction in (0, 1], got {}", spec.window));
        }
        let sweep = Sweep { spec, workloads };
        // Every scaled workload passes the workload file's own checks (rates in range).
        for job in sweep.jobs() {
            let name = &sweep.workloads[job.workload].0;
            sweep
                .scaled_workload(&job)
                .check(name)
                .map_err(|e| format!("{e} (at rate scale {} of the sweep)", job.rate_scale))?;
        }
        Ok(sweep)
    }

    /// Fingerprint of the spec (FNV-1a of its JSON form), 16 hex digits.
    pub fn fingerprint(&self) -> String {
        let text = serde_json::to_string(&self.spec).expect("spec serializes");
        let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{h:016x}")
    }

    /// The whole grid in its fixed order.
    pub fn jobs(&self) -> Vec<Job> {
        let s = &self.spec;
        let mut out = Vec::new();
        for w in 0..self.workloads.len() {
            for sched in &s.schedulers {
                for &rate_scale in &s.rate_scales {
                    for &seed in &s.seeds {
                        let index = out.len();
                        out.push(Job {
                            index,
                            workload: w,
                            scheduler: sched.clone(),
                            rate_scale,
                            seed,
                        });
                    }
                }
            }
        }
        out
    }

    /// The configuration id of a job.
    pub fn config_id(&self, job: &Job) -> String {
        format!("{}|{}|x{}", self.workloads[job.workload].0, job.scheduler, job.rate_scale)
    }

    /// The workload of a job, rates scaled.
    pub fn scaled_workload(&self, job: &Job) -> WorkloadFile {
        let mut w = self.workloads[job.workload].1.clone();
        let factor = match self.spec.relative_to {
            RelativeTo::File => job.rate_scale,
            RelativeTo::LambdaMax => match FluidSolution::from_workload(&w) {
                Ok(sol) => job.rate_scale * sol.max_scale,
                Err(_) => job.rate_scale,
            },
        };
        w.classes.iter_mut().for_each(|c| c.rate_per_s *= factor);
        w
    }

    /// Runs one job (never fails: an early stop is recorded in `error`).
    pub fn run_job(&self, job: &Job, jobs: usize, fingerprint: &str) -> Row {
        let w = self.scaled_workload(job);
        // The run as `simulate` would describe it. A generation error (arrivals past the end
        // of simulated time) or a design that does not exist at this rate (WAIT beyond its
        // fluid boundary) is the row's error, with no run: never a silent fallback to other
        // thresholds.
        let name = self.workloads[job.workload].0.clone();
        let spec = RunSpec {
            requests: Requests::Count(self.spec.requests),
            seed: job.seed,
            window: self.spec.window,
            ..RunSpec::new(WorkloadSource::Parsed { name, workload: w.clone() }, &job.scheduler)
        };
        let (outcome, error) = match spec.execute() {
            Ok(run) => (Some(run.outcome), run.error.map(|e| e.to_string()).unwrap_or_default()),
            Err(e) => (None, e),
        };
        // The job's keys, with the figures of a run that never started.
        let base = Row {
            sweep: fingerprint.into(),
            job: job.index,
            jobs,
            config: self.config_id(job),
            seed: job.seed,
            workload: self.workloads[job.workload].0.clone(),
            scheduler: job.scheduler.clone(),
            rate_scale: job.rate_scale,
            rate_per_s: w.total_rate_per_s(),
            requests: self.spec.requests,
            completed: 0,
            latency_mean_s: 0.0,
            latency_p50_s: 0.0,
            latency_p99_s: 0.0,
            ttft_mean_s: 0.0,
            throughput_tokens_per_s: 0.0,
            evictions: 0,
            restart_rate: 0.0,
            kv_utilization_mean: 0.0,
            simulated_time_s: 0.0,
            error: String::new(),
        };
        let Some(outcome) = outcome else {
            return Row { error, ..base };
        };
        let s = outcome.summary(self.spec.window);
        Row {
            requests: s.requests,
            completed: s.completed,
            latency_mean_s: s.latency_s.mean,
            latency_p50_s: s.latency_s.p50,
            latency_p99_s: s.latency_s.p99,
            ttft_mean_s: s.ttft_s.mean,
            throughput_tokens_per_s: s.throughput_tokens_per_s,
            evictions: s.evictions,
            restart_rate: s.restart_rate,
            kv_utilization_mean: s.kv_utilization_mean,
            simulated_time_s: s.simulated_time_s,
            error,
            ..base
        }
    }
}

/// File format of a results file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON lines.
    Jsonl,
    /// CSV with a header.
    Csv,
}

impl Format {
    /// By extension: `.csv` is CSV, anything else JSON lines.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            _ => Format::Jsonl,
        }
    }
}

/// Reads the rows of a results file (missing file: none). A last line without a newline is a
/// row cut by an interruption: with `repair` it is removed from the file, otherwise ignored.
pub fn read_rows(path: &Path, repair: bool) -> Result<Vec<Row>, String> {
    Ok(read_rows_raw(path, repair)?.into_iter().map(|r| r.0).collect())
}

/// [`read_rows`] with, for JSON lines, each row's line as written (serde_json's float parsing
/// is not guaranteed to round-trip, so merged files copy the lines instead of re-serializing).
pub fn read_rows_raw(path: &Path, repair: bool) -> Result<Vec<(Row, Option<String>)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    if repair && complete.len() < text.len() {
        let f = std::fs::OpenOptions::new().write(true).open(path);
        f.and_then(|f| f.set_len(complete.len() as u64))
            .map_err(|e| format!("{}: cannot drop the truncated last line: {e}", path.display()))?;
    }
    let name = path.display();
    match Format::of(path) {
        Format::Jsonl => complete
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| match serde_json::from_str(l) {
                Ok(r) => Ok((r, Some(l.to_string()))),
                Err(e) => Err(format!("{name}:{}: {e}", i + 1)),
            })
            .collect(),
        Format::Csv => csv::Reader::from_reader(complete.as_bytes())
            .deserialize()
            .enumerate()
            .map(|(i, r)| r.map(|r| (r, None)).map_err(|e| format!("{name}: row {}: {e}", i + 1)))
            .collect(),
    }
}

/// Appends rows to a results file, one flushed line per row.
struct Appender {
    file: std::fs::File,
    format: Format,
    header: bool,
}

impl Appender {
    fn open(path: &Path) -> Result<Appender, String> {
        let err = |e: std::io::Error| format!("{}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        let header = file.metadata().map_err(err)?.len() == 0;
        Ok(Appender { file, format: Format::of(path), header })
    }

    fn push(&mut self, row: &Row) -> Result<(), String> {
        self.push_raw(row, None)
    }

    /// Appends `row`, as `raw` when given and the format is JSON lines.
    fn push_raw(&mut self, row: &Row, raw: Option<&str>) -> Result<(), String> {
        let mut line = match (self.format, raw) {
            (Format::Jsonl, Some(raw)) => raw.as_bytes().to_vec(),
            _ => self.encode(row)?,
        };
        line.push(b'\n');
        self.file.write_all(&line).and_then(|_| self.file.flush()).map_err(|e| e.to_string())
    }

    fn encode(&mut self, row: &Row) -> Result<Vec<u8>, String> {
        Ok(match self.format {
            Format::Jsonl => serde_json::to_vec(row).map_err(|e| e.to_string())?,
            Format::Csv => {
                let mut w = csv::WriterBuilder::new().has_headers(self.header).from_writer(vec![]);
                w.serialize(row).map_err(|e| e.to_string())?;
                self.header = false;
                let bytes = w.into_inner().map_err(|e| e.to_string())?;
                bytes.strip_suffix(b"\n").unwrap_or(&bytes).to_vec()
            }
        })
    }
}

/// Options of [`run`].
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run only shard `(I, N)`.
    pub shard: Option<(usize, usize)>,
    /// Stop after appending this many rows (tests interrupt a sweep with it).
    pub limit: Option<usize>,
    /// Show a progress bar on stderr (hidden when stderr is not a terminal).
    pub progress: bool,
}

/// What [`run`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// Jobs in the shard.
    pub shard_jobs: usize,
    /// Of those, already in the file.
    pub already_done: usize,
    /// Rows appended now.
    pub appended: usize,
}

fn progress_bar(n: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(n as u64);
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, eta {eta}");
    pb.set_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()));
    pb
}

/// Runs the jobs of the shard that `out` does not hold yet, appending their rows.
pub fn run(sweep: &Sweep, out: &Path, opts: &RunOptions) -> Result<RunReport, String> {
    let (i, n) = opts.shard.unwrap_or((0, 1));
    if n == 0 || i >= n {
        return Err(format!("--shard {i}/{n}: expected 0 <= I < N"));
    }
    let fp = sweep.fingerprint();
    let all = sweep.jobs();
    let existing = read_rows(out, true)?;
    if let Some(r) = existing.iter().find(|r| r.sweep != fp) {
        return Err(format!(
            "{}: holds rows of another sweep ({} != {fp}, config {}); use another --out",
            out.display(),
            r.sweep,
            r.config
        ));
    }
    let done: std::collections::BTreeSet<(String, u64)> = existing.iter().map(Row::key).collect();
    let shard: Vec<&Job> = all.iter().filter(|j| j.index % n == i).collect();
    let mut todo: Vec<&Job> =
        shard.iter().copied().filter(|j| !done.contains(&(sweep.config_id(j), j.seed))).collect();
    let already_done = shard.len() - todo.len();
    if let Some(limit) = opts.limit {
        todo.truncate(limit);
    }
    let mut app = Appender::open(out)?;
    let pb = progress_bar(todo.len(), opts.progress);
    let chunk = 4 * rayon::current_num_threads().max(1);
    for part in todo.chunks(chunk) {
        let rows: Vec<Row> = part.par_iter().map(|j| sweep.run_job(j, all.len(), &fp)).collect();
        for r in &rows {
            app.push(r)?;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    Ok(RunReport { shard_jobs: shard.len(), already_done, appended: todo.len() })
}

/// Why a merge failed: every missing and duplicated job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeProblems(pub Vec<String>);

/// Merges results files into `out` (sorted by job), after checking that they come from one
/// sweep and that every job of the grid appears exactly once.
pub fn merge(out: &Path, files: &[PathBuf]) -> Result<usize, MergeProblems> {
    let mut problems = Vec::new();
    let mut by_key: BTreeMap<(String, u64), (Row, Option<String>, String)> = BTreeMap::new();
    let mut meta: Option<(String, usize)> = None;
    for f in files {
        let rows = read_rows_raw(f, false).map_err(|e| MergeProblems(vec![e]))?;
        for (r, raw) in rows {
            let name = f.display().to_string();
            match &meta {
                None => meta = Some((r.sweep.clone(), r.jobs)),
                Some((s, n)) if *s != r.sweep || *n != r.jobs => {
                    problems
                        .push(format!("{name}: job {} is from another sweep ({})", r.job, r.sweep));
                    continue;
                }
                Some(_) => {}
            }
            if let Some((_, _, first)) = by_key.get(&r.key()) {
                problems.push(format!(
                    "duplicated: job {} ({}, seed {}) in {first} and {name}",
                    r.job, r.config, r.seed
                ));
            } else {
                by_key.insert(r.key(), (r, raw, name));
            }
        }
    }
    let jobs = meta.as_ref().map_or(0, |m| m.1);
    let mut seen = vec![false; jobs];
    by_key.values().for_each(|(r, _, _)| seen[r.job.min(jobs.saturating_sub(1))] = true);
    problems.extend(
        seen.iter()
            .enumerate()
            .filter(|(_, s)| !**s)
            .map(|(j, _)| format!("missing: job {j} of {jobs}")),
    );
    if jobs == 0 {
        problems.push("no rows in the input files".into());
    }
    if !problems.is_empty() {
        return Err(MergeProblems(problems));
    }
    let mut rows: Vec<(Row, Option<String>, String)> = by_key.into_values().collect();
    rows.sort_by_key(|r| r.0.job);
    let _ = std::fs::remove_file(out);
    let mut app = Appender::open(out).map_err(|e| MergeProblems(vec![e]))?;
    for (r, raw, _) in &rows {
        app.push_raw(r, raw.as_deref()).map_err(|e| MergeProblems(vec![e]))?;
    }
    Ok(rows.len())
}

/// Runs the whole grid without a file (indexed `par_iter`, rows in grid order).
pub fn run_in_memory(sweep: &Sweep) -> Vec<Row> {
    let fp = sweep.fingerprint();
    let jobs = sweep.jobs();
    jobs.par_iter().map(|j| sweep.run_job(j, jobs.len(), &fp)).collect()
}
