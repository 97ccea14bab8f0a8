//! `kvsched._kvsched`: the Python extension module behind `import kvsched` (PyO3, abi3).
//!
//! Every entry point calls the library code the CLI calls (`kvsched::run` and
//! `kvsched::conform`), so results and error messages are the CLI's: bad input raises
//! `kvsched.KvschedError` (a `ValueError`) with the message `kvsched` prints after `error:`.
//! Long work runs on a worker thread with the GIL released; the calling thread waits in slices
//! of [`POLL`] and checks for signals between them, so Ctrl-C raises `KeyboardInterrupt`
//! promptly (see [`blocking`] for how the worker is stopped). A panic in Rust becomes a
//! `KvschedError` naming it as a bug; it never takes the interpreter down.
//!
//! In-process conformance ([`conform`]): a Python object with `decide(msg) -> plan` (the
//! interface of `clients/python/kvsched_client.py`) runs through `kvsched::conform`'s battery,
//! shrinking and replay. It receives the very messages the wire protocol carries
//! (`kvsched::protocol::wire`, converted to dicts instead of JSON lines, their `waiting` and
//! `running` lists built lazily: [`view`]) and answers with the plan's fields, parsed and judged
//! as a `plan` line would be. Its decision loop is the stdio adapter's (`kvsched::conform::latch`).

use kvsched::conform::latch::{self, Exchange, Latch};
use kvsched::conform::{
    self as harness, Candidate, ConformConfig, ConformReport, ExternalCommand, ExternalOptions,
    Finish, Runnable, Verdict, VerdictCode,
};
use kvsched::experiments::{render, report, Ctx, Scale};
use kvsched::protocol::wire::{
    decide_of, Hello, Item, PlanMsg, ToScheduler, Views, PROTOCOL_NAME, PROTOCOL_VERSION,
};
use kvsched::run::hindsight::{self, Method, OptSpec};
use kvsched::run::{Requests, RunSpec, TraceCsv, WorkloadSource};
use kvsched::sim::{Plan, Scheduler, View};
use kvsched_spec::rounds::RoundInstance;
use kvsched_spec::{Information, ModelConfig, WorkloadFile};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pythonize::{depythonize, pythonize};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

mod view;

pyo3::create_exception!(
    _kvsched,
    KvschedError,
    PyValueError,
    "Bad input or a failed request, with the message the `kvsched` CLI prints."
);

/// How often the waiting thread checks for signals.
const POLL: Duration = Duration::from_millis(20);
/// How long an interrupted call waits for its worker to stop before returning anyway.
const GRACE: Duration = Duration::from_secs(5);

fn err(msg: impl std::fmt::Display) -> PyErr {
    KvschedError::new_err(msg.to_string())
}

/// A worker's reason to stop early: a Python exception to raise in the caller (a
/// `KeyboardInterrupt`, or a `BaseException` a scheduler raised), carried by unwinding.
struct Abort(PyErr);

/// The cancellation flag a worker checks at its safe points.
#[derive(Clone, Default)]
struct Cancel(Arc<AtomicBool>);

impl Cancel {
    fn check(&self) {
        if self.0.load(Ordering::Relaxed) {
            resume_unwind(Box::new(Abort(PyKeyboardInterrupt::new_err("interrupted"))));
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `work` on a worker thread with the GIL released. The caller checks for signals every
/// [`POLL`]; on `KeyboardInterrupt` (or any signal handler's exception) it raises the flag the
/// worker checks at its safe points (every decision of a simulation or a conformance run,
/// every finished experiment of `reproduce`, every node of `opt`'s branch-and-bound and every
/// 64 moves of its local search), waits up to [`GRACE`] for it to stop, and raises. A HiGHS
/// solve (`opt(method="ip")`, `lp=True`) has no safe point: interrupted, it finishes in the
/// background (bounded by its own limits). Errors become `KvschedError`; a panic becomes a
/// `KvschedError` naming a bug.
fn blocking<T: Send + 'static>(
    py: Python<'_>,
    cancel: &Cancel,
    calls_python: bool,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel();
    // `detach` needs a `Send` closure; a receiver is only `Send`.
    let rx = std::sync::Mutex::new(rx);
    let recv = |d: Duration| match rx.lock() {
        Ok(r) => r.recv_timeout(d),
        Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
    };
    std::thread::Builder::new()
        .name("kvsched".into())
        .spawn(move || {
            let run = || catch_unwind(AssertUnwindSafe(work));
            // Work that calls Python (a Python scheduler) is attached once, then detached: the
            // thread keeps its Python thread state, so every decision re-attaches cheaply.
            let r = if calls_python { Python::attach(|py| py.detach(run)) } else { run() };
            let _ = tx.send(r);
        })
        .map_err(|e| err(format!("cannot start a worker thread: {e}")))?;
    let finish = |r: std::thread::Result<Result<T, String>>| match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(msg)) => Err(err(msg)),
        Err(p) => match p.downcast::<Abort>() {
            Ok(a) => Err(a.0),
            Err(p) => {
                Err(err(format!("internal error (a bug in kvsched): {}", panic_message(&*p))))
            }
        },
    };
    loop {
        match py.detach(|| recv(POLL)) {
            Ok(r) => return finish(r),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(err("internal error (a bug in kvsched): the worker thread vanished"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    cancel.0.store(true, Ordering::Relaxed);
                    // A scheduler's own exception is more telling than the interrupt.
                    if let Ok(Err(p)) = py.detach(|| recv(GRACE)) {
                        if let Ok(a) = p.downcast::<Abort>() {
                            if !a.0.is_instance_of::<PyKeyboardInterrupt>(py) {
                                return Err(a.0);
                            }
                        }
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// A workload or an instance: a file path, or a dict of the file's contents.
enum Source {
    Path(PathBuf),
    Dict(serde_json::Value),
}

fn source(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Source> {
    if obj.is_instance_of::<PyDict>() {
        let v: serde_json::Value =
            depythonize(obj).map_err(|e| err(format!("{what} dict: {e}")))?;
        return Ok(Source::Dict(v));
    }
    match obj.extract::<PathBuf>() {
        Ok(p) => Ok(Source::Path(p)),
        Err(_) => Err(err(format!("{what}: expected a path or a dict, got {}", type_name(obj)))),
    }
}

/// The label a dict stands under in error messages.
const DICT_WORKLOAD: &str = "<workload dict>";

/// A workload dict through the workload file's own parser and validation: the dict is written
/// as TOML first, so every check and message is the file's (less the line number, which would
/// point into text the user never saw).
fn workload_from_dict(v: &serde_json::Value) -> Result<WorkloadFile, String> {
    let text = toml::to_string(v).map_err(|e| format!("{DICT_WORKLOAD}: {e}"))?;
    WorkloadFile::parse(DICT_WORKLOAD, &text)
        .map_err(|e| kvsched_spec::workload::WorkloadError { line: None, ..e }.to_string())
}

fn load_workload(src: &Source) -> Result<WorkloadFile, String> {
    match src {
        Source::Path(p) => {
            let name = p.display().to_string();
            WorkloadFile::parse(&name, &kvsched::workload::read_file(p)?).map_err(|e| e.to_string())
        }
        Source::Dict(v) => workload_from_dict(v),
    }
}

fn to_py(py: Python<'_>, v: &impl serde::Serialize) -> PyResult<Py<PyAny>> {
    Ok(pythonize(py, v)
        .map_err(|e| err(format!("internal error (a bug in kvsched): {e}")))?
        .unbind())
}

/// Passes a scheduler (a simulation's, or a conformance run's) through unchanged, stopping the
/// run when cancelled.
struct Cancellable<S: ?Sized> {
    inner: Box<S>,
    cancel: Cancel,
}

impl<S: Scheduler + ?Sized> Scheduler for Cancellable<S> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn information(&self) -> Information {
        self.inner.information()
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        self.cancel.check();
        self.inner.decide(view)
    }
}

/// `simulate(workload, scheduler="vllm-v0", requests=10000, seed=1, ...)`: `kvsched simulate
/// --json`, plus `records`, the per-request records as columns (a dict of equal-length lists:
/// `pandas.DataFrame(result["records"])`). Keyword arguments are the CLI's flags.
#[pyfunction]
#[pyo3(signature = (workload, scheduler="vllm-v0".to_string(), requests=10_000, seed=1, *,
    horizon_s=None, rate_scale=1.0, prediction_noise=None, trace_csv=None, rate=None,
    prefill_dist=None, decode_dist=None, calibration=None, trace=None, window=0.5, check=false,
    every_step=false, stream=false))]
#[allow(clippy::too_many_arguments)]
fn simulate(
    py: Python<'_>,
    workload: &Bound<'_, PyAny>,
    scheduler: String,
    requests: u64,
    seed: u64,
    horizon_s: Option<f64>,
    rate_scale: f64,
    prediction_noise: Option<f64>,
    trace_csv: Option<PathBuf>,
    rate: Option<f64>,
    prefill_dist: Option<String>,
    decode_dist: Option<String>,
    calibration: Option<PathBuf>,
    trace: Option<PathBuf>,
    window: f64,
    check: bool,
    every_step: bool,
    stream: bool,
) -> PyResult<Py<PyAny>> {
    let src = source(workload, "workload")?;
    let cancel = Cancel::default();
    let c = cancel.clone();
    let (summary, outcome) = blocking(py, &cancel, false, move || {
        let workload = match &src {
            Source::Path(p) => WorkloadSource::File(p.clone()),
            Source::Dict(v) => WorkloadSource::Parsed {
                name: DICT_WORKLOAD.to_string(),
                workload: workload_from_dict(v)?,
            },
        };
        let requests = match (trace_csv, horizon_s) {
            (Some(path), _) => {
                Requests::TraceCsv(TraceCsv { path, rate, prefill_dist, decode_dist })
            }
            (None, Some(h)) => Requests::HorizonS(h),
            (None, None) => Requests::Count(requests),
        };
        let spec = RunSpec {
            requests,
            seed,
            rate_scale,
            prediction_noise,
            calibration,
            window,
            check,
            every_step,
            stream,
            trace,
            ..RunSpec::new(workload, &scheduler)
        };
        let run = spec.execute_wrapped(|inner| Box::new(Cancellable { inner, cancel: c }))?;
        Ok((spec.summary_json(&run), run.outcome))
    })?;
    let out = pythonize(py, &summary).map_err(|e| err(e.to_string()))?;
    let out = out.cast_into::<PyDict>().map_err(|e| err(e.to_string()))?;
    out.set_item("records", records(py, &outcome)?)?;
    Ok(out.into_any().unbind())
}

/// The per-request records, one list per field (times in seconds; `None` where a request never
/// got its first token or never finished). Empty lists for a streamed run, which keeps none.
fn records<'py>(py: Python<'py>, o: &kvsched::sim::Outcome) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let rs = &o.requests;
    let secs = |t: kvsched_spec::Nanos| t.get() as f64 / 1e9;
    let opt = |t: Option<kvsched_spec::Nanos>| t.map(secs);
    d.set_item("id", PyList::new(py, rs.iter().map(|r| r.id.0))?)?;
    d.set_item("class", PyList::new(py, rs.iter().map(|r| r.class))?)?;
    d.set_item("arrival_s", PyList::new(py, rs.iter().map(|r| secs(r.arrival_ns)))?)?;
    d.set_item("prompt_tokens", PyList::new(py, rs.iter().map(|r| r.prompt_tokens.get()))?)?;
    d.set_item("output_tokens", PyList::new(py, rs.iter().map(|r| r.output_tokens.get()))?)?;
    d.set_item("first_token_s", PyList::new(py, rs.iter().map(|r| opt(r.first_token_ns)))?)?;
    d.set_item("finish_s", PyList::new(py, rs.iter().map(|r| opt(r.finish_ns)))?)?;
    let latency = |r: &kvsched::sim::RequestRecord| {
        r.finish_ns.map(|f| (f.get().saturating_sub(r.arrival_ns.get())) as f64 / 1e9)
    };
    d.set_item("latency_s", PyList::new(py, rs.iter().map(latency))?)?;
    d.set_item("evictions", PyList::new(py, rs.iter().map(|r| r.evictions))?)?;
    Ok(d)
}

/// `fluid(workload)`: `kvsched fluid --json` (unbounded quantities are `None`).
#[pyfunction]
fn fluid(py: Python<'_>, workload: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let src = source(workload, "workload")?;
    let name = match &src {
        Source::Path(p) => p.display().to_string(),
        Source::Dict(_) => DICT_WORKLOAD.into(),
    };
    let w = load_workload(&src).map_err(err)?;
    let sol = kvsched::run::fluid(&name, &w).map_err(err)?;
    to_py(py, &serde_json::to_value(&sol).map_err(err)?)
}

fn load_instance(src: &Source) -> Result<(RoundInstance, String), String> {
    match src {
        Source::Path(p) => Ok((hindsight::load_instance(p)?, p.display().to_string())),
        Source::Dict(v) => {
            let name = "<instance dict>";
            Ok((hindsight::instance_from_json(v.clone(), name)?, name.into()))
        }
    }
}

/// `opt(instance, ...)`: `kvsched opt --json` on a round-model instance (path or dict).
#[pyfunction]
#[pyo3(signature = (instance, *, lp=false, time_limit_s=None, method=None, search_iters=20_000,
    seed=1))]
fn opt(
    py: Python<'_>,
    instance: &Bound<'_, PyAny>,
    lp: bool,
    time_limit_s: Option<f64>,
    method: Option<String>,
    search_iters: u64,
    seed: u64,
) -> PyResult<Py<PyAny>> {
    let src = source(instance, "instance")?;
    let method = method.as_deref().map(Method::parse).transpose().map_err(err)?;
    let spec = OptSpec { lp, time_limit_s, method, search_iters, seed, interrupt: None };
    spec.check().map_err(err)?;
    let (inst, name) = load_instance(&src).map_err(err)?;
    let cancel = Cancel::default();
    let spec = OptSpec { interrupt: Some(Arc::clone(&cancel.0)), ..spec };
    let v = blocking(py, &cancel, false, move || {
        let solved = spec.solve(&inst, &name)?;
        Ok(hindsight::to_json(&inst, &solved))
    })?;
    to_py(py, &v)
}

/// `reproduce(claims=None, *, full=False, seed=1, out=None)`: runs the experiments behind the
/// claims (all, or the given IDs) and returns `results.json`'s contents; with `out`, also
/// writes the report there, as `kvsched reproduce --out`.
#[pyfunction]
#[pyo3(signature = (claims=None, *, full=false, seed=1, out=None))]
fn reproduce(
    py: Python<'_>,
    claims: Option<Vec<String>>,
    full: bool,
    seed: u64,
    out: Option<PathBuf>,
) -> PyResult<Py<PyAny>> {
    let claims = report::select(&claims.unwrap_or_default()).map_err(err)?;
    let ctx = Ctx { scale: if full { Scale::Full } else { Scale::Quick }, seed };
    let cancel = Cancel::default();
    let c = cancel.clone();
    let r = blocking(py, &cancel, false, move || {
        let r = report::reproduce(&ctx, &claims, &|_| c.check());
        if let Some(dir) = &out {
            render::write(&r, dir)?;
        }
        Ok(r)
    })?;
    to_py(py, &r)
}

/// `schedulers()`: the registry, as `kvsched schedulers --json`.
#[pyfunction]
fn schedulers(py: Python<'_>) -> PyResult<Py<PyAny>> {
    to_py(py, &kvsched::schedulers::catalog())
}

/// The plan fields a Python scheduler returns, as a `plan` line's (`type` and `seq`, if
/// present, are ignored: the stdio client library overwrites them). Read field by field: this
/// is the hot path. Shape errors are reported as the wire parser reports a malformed line.
fn plan_of(reply: &Bound<'_, PyAny>, seq: u64) -> Result<PlanMsg, String> {
    use pyo3::intern;
    let py = reply.py();
    let d = reply.cast::<PyDict>().map_err(|_| {
        format!("expected a dict with evict, batch and repeat, got {}", type_name(reply))
    })?;
    let field = |name| get_field(d, name);
    let evict = match field(intern!(py, "evict"))? {
        Some(v) => v.extract::<Vec<u32>>().map_err(|e| format!("evict: {e}"))?,
        None => vec![],
    };
    let repeat = match field(intern!(py, "repeat"))? {
        Some(v) => Some(v.extract::<u64>().map_err(|e| format!("repeat: {e}"))?),
        None => None,
    };
    let mut batch = Vec::new();
    if let Some(items) = field(intern!(py, "batch"))? {
        let items =
            items.cast_into::<PyList>().map_err(|_| "batch: expected a list".to_string())?;
        batch.reserve(items.len());
        for (i, item) in items.iter().enumerate() {
            let shape = || {
                format!(
                    "batch[{i}]: expected {{\"prefill\": id, \"tokens\": n}} or {{\"decode\": id}}"
                )
            };
            let x = item.cast::<PyDict>().map_err(|_| shape())?;
            let get = |k| match get_field(x, k)? {
                Some(v) => v.extract::<u64>().map(Some).map_err(|_| shape()),
                None => Ok(None),
            };
            let id32 =
                |v: Option<u64>| v.map(|v| u32::try_from(v).map_err(|_| shape())).transpose();
            let decode = id32(get(intern!(py, "decode"))?)?;
            let prefill = id32(get(intern!(py, "prefill"))?)?;
            let tokens = get(intern!(py, "tokens"))?;
            let known = [decode.is_some(), prefill.is_some(), tokens.is_some()];
            if x.len() != known.iter().filter(|k| **k).count() {
                return Err(format!(
                    "batch[{i}]: unknown field; expected prefill, tokens or decode"
                ));
            }
            batch.push(Item { prefill, tokens, decode });
        }
    }
    Ok(PlanMsg { seq, evict, batch, repeat })
}

fn get_field<'py>(
    d: &Bound<'py, PyDict>,
    name: &Bound<'py, pyo3::types::PyString>,
) -> Result<Option<Bound<'py, PyAny>>, String> {
    Ok(d.get_item(name).map_err(|e| e.to_string())?.filter(|v| !v.is_none()))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
}

/// A Python scheduler object (or a factory of them) as a conformance [`Candidate`].
struct PyCandidate {
    target: Py<PyAny>,
    factory: bool,
    label: String,
    cancel: Cancel,
}

fn attr_str(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<String>> {
    match obj.getattr_opt(name)? {
        Some(v) if !v.is_none() => Ok(Some(v.extract()?)),
        _ => Ok(None),
    }
}

/// A Python exception as a verdict: `crash`, as the stdio harness reports a scheduler process
/// that died of it, with the traceback.
fn exception_verdict(py: Python<'_>, e: &PyErr, during: &str) -> Verdict {
    let tb = e.traceback(py).and_then(|t| t.format().ok()).unwrap_or_default();
    Verdict::new(VerdictCode::Crash, format!("{during}: the scheduler raised {e}\n{tb}"))
}

/// Stops the battery for a `BaseException` that is not an `Exception` (KeyboardInterrupt,
/// SystemExit): it is the user's, not a scheduler fault.
fn abort_if_base(py: Python<'_>, e: PyErr) -> PyErr {
    if !e.is_instance_of::<pyo3::exceptions::PyException>(py) {
        resume_unwind(Box::new(Abort(e)));
    }
    e
}

impl Candidate for PyCandidate {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn start(&self, scenario: &str, config: &ModelConfig) -> Result<Box<dyn Runnable>, Verdict> {
        self.cancel.check();
        Python::attach(|py| {
            let obj = if self.factory {
                self.target.call0(py).map_err(|e| {
                    let e = abort_if_base(py, e);
                    Verdict::new(
                        VerdictCode::SpawnFailed,
                        format!("the scheduler factory raised {e}"),
                    )
                })?
            } else {
                self.target.clone_ref(py)
            };
            let b = obj.bind(py);
            let fail = |e: PyErr| {
                let e = abort_if_base(py, e);
                Verdict::new(VerdictCode::Handshake, format!("{e}"))
            };
            let name = attr_str(b, "name").map_err(fail)?.unwrap_or_else(|| "python".into());
            let views = match attr_str(b, "views").map_err(fail)?.as_deref() {
                None | Some("full") => Views::Full,
                Some("delta") => Views::Delta,
                Some(o) => {
                    return Err(Verdict::new(
                        VerdictCode::Handshake,
                        format!("views: expected \"full\" or \"delta\", got {o:?}"),
                    ))
                }
            };
            let information = match attr_str(b, "information").map_err(fail)? {
                None => config.information,
                Some(s) => {
                    serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|_| {
                        Verdict::new(
                            VerdictCode::Handshake,
                            format!("information: expected hidden, predicted or known, got {s:?}"),
                        )
                    })?
                }
            };
            if b.hasattr("hello").map_err(fail)? {
                let hello = ToScheduler::Hello(Hello {
                    protocol: PROTOCOL_NAME.into(),
                    version: PROTOCOL_VERSION,
                    scenario: scenario.into(),
                    config: config.clone(),
                    capacity_tokens: config.memory.capacity().get(),
                    watermark_tokens: config.memory.watermark().get(),
                });
                let msg = pythonize(py, &hello)
                    .map_err(|e| Verdict::new(VerdictCode::Handshake, e.to_string()))?;
                b.call_method1("hello", (msg,))
                    .map_err(|e| exception_verdict(py, &abort_if_base(py, e), "hello"))?;
            }
            Ok(Box::new(PyRunnable {
                obj,
                name,
                information,
                views,
                latch: Latch::default(),
                cancel: self.cancel.clone(),
                cache: view::ReqCache::default(),
            }) as Box<dyn Runnable>)
        })
    }
}

/// A started Python scheduler: the in-process counterpart of `conform::external::External`,
/// sharing its decision loop (`kvsched::conform::latch`: numbering, timing, the latched fault).
struct PyRunnable {
    obj: Py<PyAny>,
    name: String,
    information: Information,
    views: Views,
    latch: Latch,
    cancel: Cancel,
    /// Each request's dict, built once per run (see [`view::ReqCache`]).
    cache: view::ReqCache,
}

impl Exchange for PyRunnable {
    fn latch(&mut self) -> &mut Latch {
        &mut self.latch
    }

    fn exchange(&mut self, view: &View<'_>) -> Result<Plan, Verdict> {
        let ctx = self.latch.next(view, self.views);
        let msg = decide_of(view, &ctx);
        let seq = ctx.seq;
        Python::attach(|py| {
            let m = view::decide_dict(py, msg, &self.cache)
                .map_err(|e| Verdict::new(VerdictCode::Protocol, e.to_string()))?;
            let reply = self.obj.bind(py).call_method1("decide", (m,)).map_err(|e| {
                exception_verdict(py, &abort_if_base(py, e), &format!("decision {seq}"))
            })?;
            plan_of(&reply, seq).and_then(|p| p.to_plan()).map_err(|e| {
                Verdict::new(VerdictCode::Garbage, format!("plan for decision {seq}: {e}"))
            })
        })
    }
}

impl Scheduler for PyRunnable {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn information(&self) -> Information {
        self.information
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        self.cancel.check();
        latch::decide(self, view)
    }
}

impl Runnable for PyRunnable {
    fn take_fault(&mut self) -> Option<Verdict> {
        self.latch.take_fault()
    }
    fn decisions(&self) -> u64 {
        self.latch.decisions()
    }
    fn wire_time(&self) -> Duration {
        self.latch.wire_time()
    }
    fn finish(&mut self, _how: Finish<'_>) {}
}

/// An external command (`kvsched conform -- CMD`) with a cancellable start.
struct Command {
    inner: ExternalCommand,
    cancel: Cancel,
}

impl Candidate for Command {
    fn label(&self) -> String {
        self.inner.label()
    }
    fn start(&self, scenario: &str, config: &ModelConfig) -> Result<Box<dyn Runnable>, Verdict> {
        self.cancel.check();
        let r = self.inner.start(scenario, config)?;
        Ok(Box::new(Cancellable { inner: r, cancel: self.cancel.clone() }))
    }
}

impl Runnable for Cancellable<dyn Runnable> {
    fn take_fault(&mut self) -> Option<Verdict> {
        self.inner.take_fault()
    }
    fn decisions(&self) -> u64 {
        self.inner.decisions()
    }
    fn wire_time(&self) -> Duration {
        self.inner.wire_time()
    }
    fn finish(&mut self, how: Finish<'_>) {
        self.inner.finish(how)
    }
}

/// `conform(scheduler, ...)`: the battery of `kvsched conform`, in-process. `scheduler` is a
/// Python object with `decide(msg) -> plan` (optional `hello(msg)`, `name`, `views`,
/// `information`: the interface of `clients/python/kvsched_client.py`), or a class or other
/// factory called once per run for a fresh one, or a command line (a list of strings) run over
/// the stdio protocol exactly as `kvsched conform -- CMD` does. With `replay` (a replay file's
/// path, or the dict `report["shrunk"]["replay"]`), runs only that instance. With
/// `replay_out`, writes the shrunk failure there. Returns the JSON report as a dict.
#[pyfunction]
#[pyo3(signature = (scheduler, *, requests=200, seeds=vec![1], scenarios=vec![],
    information="hidden".to_string(), starvation_bound_ns=1_000_000_000, starvation_passes=0,
    baselines=true, shrink=true, shrink_runs=400, shrink_time_s=60, replay=None,
    replay_out=None, decision_timeout_ms=5000, handshake_timeout_ms=10000, total_timeout_s=300,
    preemption="restart".to_string()))]
#[allow(clippy::too_many_arguments)]
fn conform(
    py: Python<'_>,
    scheduler: &Bound<'_, PyAny>,
    requests: usize,
    seeds: Vec<u64>,
    scenarios: Vec<String>,
    information: String,
    starvation_bound_ns: u64,
    starvation_passes: u64,
    baselines: bool,
    shrink: bool,
    shrink_runs: usize,
    shrink_time_s: u64,
    replay: Option<&Bound<'_, PyAny>>,
    replay_out: Option<PathBuf>,
    decision_timeout_ms: u64,
    handshake_timeout_ms: u64,
    total_timeout_s: u64,
    preemption: String,
) -> PyResult<Py<PyAny>> {
    let cancel = Cancel::default();
    let command: Option<Vec<String>> = if scheduler.is_instance_of::<PyList>()
        || scheduler.is_instance_of::<pyo3::types::PyTuple>()
    {
        Some(scheduler.extract().map_err(|_| err("scheduler: a command is a list of strings"))?)
    } else {
        None
    };
    // The same configuration and limits, and the same checks, as `kvsched conform`'s flags.
    let mut cfg = ConformConfig {
        requests,
        seeds,
        scenarios,
        information: harness::parse_information(&information).map_err(err)?,
        preemption: kvsched::run::parse_preemption(&preemption).map_err(err)?,
        starvation_bound_ns,
        starvation_passes,
        shrink,
        shrink_max_runs: shrink_runs,
        shrink_max_time: Duration::from_secs(shrink_time_s),
        ..ConformConfig::default()
    };
    if !baselines {
        cfg.baselines.clear();
    }
    let options = ExternalOptions::with_limits(
        decision_timeout_ms,
        handshake_timeout_ms,
        total_timeout_s,
        None,
    )
    .map_err(err)?;
    let candidate: Box<dyn Candidate + Send> = match command {
        Some(cmd) => {
            let (program, rest) =
                cmd.split_first().ok_or_else(|| err("scheduler: the command is empty"))?;
            Box::new(Command {
                inner: ExternalCommand { program: program.clone(), args: rest.to_vec(), options },
                cancel: cancel.clone(),
            })
        }
        None => {
            let has_decide = scheduler.hasattr("decide")?;
            if !has_decide && !scheduler.is_callable() {
                return Err(err(
                    "scheduler: expected an object with decide(msg), a factory of one, or a \
                     command line (list of strings)",
                ));
            }
            let label = if has_decide && !scheduler.is_instance_of::<pyo3::types::PyType>() {
                attr_str(scheduler, "name")?.unwrap_or_else(|| "python".into())
            } else {
                scheduler.getattr("__name__")?.extract::<String>()?
            };
            Box::new(PyCandidate {
                target: scheduler.clone().unbind(),
                factory: !has_decide || scheduler.is_instance_of::<pyo3::types::PyType>(),
                label: format!("{label} (in-process Python)"),
                cancel: cancel.clone(),
            })
        }
    };
    let replay = match replay {
        None => None,
        Some(r) => {
            let text = match source(r, "replay")? {
                Source::Path(p) => {
                    let t = kvsched::workload::read_file(&p).map_err(err)?;
                    (t, p.display().to_string())
                }
                Source::Dict(v) => (v.to_string(), "<replay dict>".to_string()),
            };
            Some(harness::parse_replay(&text.0).map_err(|e| err(format!("{}: {e}", text.1)))?)
        }
    };
    let report: ConformReport = blocking(py, &cancel, true, move || match &replay {
        Some(r) => Ok(harness::run_replay(candidate.as_ref(), r)),
        None => {
            let cfg = cfg.checked()?;
            let list = harness::scenarios(&cfg)?;
            let r = harness::run_battery(candidate.as_ref(), &list, &cfg, &mut |_| {});
            if let (Some(sh), Some(out)) = (&r.shrunk, &replay_out) {
                let text = serde_json::to_string_pretty(&sh.replay).map_err(|e| e.to_string())?;
                std::fs::write(out, text + "\n")
                    .map_err(|e| format!("{}: cannot write replay: {e}", out.display()))?;
            }
            Ok(r)
        }
    })?;
    to_py(py, &report)
}

/// The extension module.
#[pymodule]
fn _kvsched(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("KvschedError", m.py().get_type::<KvschedError>())?;
    m.add("PROTOCOL_VERSION", PROTOCOL_VERSION)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(fluid, m)?)?;
    m.add_function(wrap_pyfunction!(opt, m)?)?;
    m.add_function(wrap_pyfunction!(reproduce, m)?)?;
    m.add_function(wrap_pyfunction!(schedulers, m)?)?;
    m.add_function(wrap_pyfunction!(conform, m)?)?;
    m.add_class::<view::Requests>()?;
    Ok(())
}
