//! The adapter that runs a scheduler in another process over the wire protocol
//! (`spec/PROTOCOL.md`) and presents it as a [`crate::sim::Scheduler`].
//!
//! [`ExternalCommand`] spawns the process (in its own process group, with piped stdin, stdout
//! and stderr), sends `hello`, reads `ready`, and at every decision point writes one `decide`
//! line and reads one `plan` line. Writes happen on the calling thread; stdout is read by its
//! own thread into a channel that the calling thread waits on only until the deadline. A
//! watchdog thread enforces the per-decision and total timeouts by killing the whole process
//! tree: the process group, every descendant found through `/proc` (parent links, and a token
//! in the environment that survives `setsid` and orphaning). Stderr is drained by its own
//! thread into a tail kept for the report (and, optionally, a log).
//!
//! A fault (crash, hang, garbage, wrong message, reported error) is recorded in the adapter;
//! `decide` then returns a *poisoned* plan that names the reserved id `u32::MAX`, which the
//! engine rejects, ending the run without any engine change. The harness reads the recorded
//! fault through [`Runnable::take_fault`] before it looks at the engine's error.

use super::verdict::{Verdict, VerdictCode};
use super::{Candidate, Finish, Runnable};
use crate::protocol::wire::{
    decide_of, parse_from_scheduler, DecideCtx, End, ErrorMsg, FromScheduler, Hello, ToScheduler,
    Views, MAX_LINE_BYTES, PROTOCOL_NAME, PROTOCOL_VERSION,
};
use crate::sim::{Plan, Repeat, Scheduler, View};
use kvsched_spec::{BatchItem, Information, ModelConfig, RequestId};
use serde::Serialize;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Timeouts and logging of an external scheduler.
#[derive(Clone, Debug)]
pub struct ExternalOptions {
    /// Longest wait for one plan.
    pub decision_timeout: Duration,
    /// Longest wait for `ready` (a real engine's scheduler may take tens of seconds to import).
    pub handshake_timeout: Duration,
    /// Longest wall time of one run (one scenario), counted from `ready`: the handshake has
    /// its own limit, so a slow start does not eat the run's time.
    pub total_timeout: Duration,
    /// Append the scheduler's stderr to this file.
    pub stderr_log: Option<std::path::PathBuf>,
}

impl Default for ExternalOptions {
    fn default() -> Self {
        ExternalOptions {
            decision_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(300),
            stderr_log: None,
        }
    }
}

/// A command line that starts a scheduler speaking the protocol.
#[derive(Clone, Debug)]
pub struct ExternalCommand {
    /// Program.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Options.
    pub options: ExternalOptions,
}

impl Candidate for ExternalCommand {
    fn label(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn start(&self, scenario: &str, config: &ModelConfig) -> Result<Box<dyn Runnable>, Verdict> {
        External::spawn(self, scenario, config).map(|e| Box::new(e) as Box<dyn Runnable>)
    }
}

/// The reserved id of a poisoned plan.
pub const POISON_ID: u32 = u32::MAX;

/// A plan the engine always rejects (`unknown_request` of [`POISON_ID`]): ends a run.
pub fn poisoned_plan() -> Plan {
    Plan {
        evict: vec![],
        batch: vec![BatchItem::Decode { id: RequestId(POISON_ID) }],
        repeat: Repeat::Once,
        decode_all: false,
        hold: Vec::new(),
    }
}

struct Watch {
    start: Instant,
    /// Microseconds since `start`; `u64::MAX` when disarmed.
    deadline_us: AtomicU64,
    fired: AtomicBool,
    stop: AtomicBool,
    child: Arc<Mutex<Child>>,
    pid: u32,
    /// `KVSCHED_CONFORM_RUN=...`, set in the scheduler's environment.
    token: String,
}

/// The environment variable that marks a scheduler's process tree.
const TOKEN_VAR: &str = "KVSCHED_CONFORM_RUN";

/// Every process below `root` (by parent links in `/proc`), and every process whose environment
/// holds `token` (descendants that were orphaned or started a new session keep it), as
/// strings for `kill`. Empty where there is no `/proc`.
fn descendants(root: u32, token: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut parent = std::collections::BTreeMap::new();
    let mut marked = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
            let after = stat.rsplit_once(')').map_or("", |x| x.1);
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
                parent.insert(pid, ppid);
            }
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|&b| b == 0).any(|kv| kv == token.as_bytes()) {
                marked.push(pid);
            }
        }
    }
    let mut found: std::collections::BTreeSet<u32> = marked.into_iter().collect();
    loop {
        let before = found.len();
        for (&pid, &ppid) in &parent {
            if ppid == root || found.contains(&ppid) {
                found.insert(pid);
            }
        }
        if found.len() == before {
            break;
        }
    }
    found.remove(&root);
    found.into_iter().map(|p| p.to_string()).collect()
}

/// One line of the scheduler's stdout, read by its own thread.
enum Line {
    /// A line (with its newline, unless the stream ended).
    Text(Vec<u8>),
    /// A line longer than the protocol allows.
    TooLong,
    /// End of stream or a read error.
    End,
}

fn read_lines(stdout: ChildStdout, tx: std::sync::mpsc::Sender<Line>) -> impl FnOnce() {
    move || {
        let mut r = BufReader::with_capacity(1 << 16, stdout);
        let limit = MAX_LINE_BYTES as u64 + 1;
        loop {
            let mut line = Vec::new();
            let msg = match r.by_ref().take(limit).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => Line::End,
                Ok(n) if line.last() != Some(&b'\n') && n as u64 >= limit => Line::TooLong,
                Ok(_) => Line::Text(line),
            };
            let last = !matches!(msg, Line::Text(_));
            if tx.send(msg).is_err() || last {
                return;
            }
        }
    }
}

fn next_token() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    format!("{TOKEN_VAR}={}-{n}", std::process::id())
}

impl Watch {
    fn arm(&self, within: Duration) {
        let at = self.start.elapsed() + within;
        self.deadline_us.store(at.as_micros().min(u64::MAX as u128 - 1) as u64, Ordering::Relaxed);
    }

    fn disarm(&self) {
        self.deadline_us.store(u64::MAX, Ordering::Relaxed);
    }

    fn kill(&self) {
        // Descendants first, while the parent links still lead to them: children, grandchildren
        // that left the process group or the session (`setsid`), and orphans found by the token
        // every descendant inherits in its environment.
        let mut pids = descendants(self.pid, &self.token);
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
        }
        // The scheduler runs in its own process group; kill the group too.
        pids.push(format!("-{}", self.pid));
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .args(&pids)
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }

    /// Time left before the armed deadline (`None` when disarmed).
    fn left(&self) -> Option<Duration> {
        let d = self.deadline_us.load(Ordering::Relaxed);
        (d != u64::MAX).then(|| Duration::from_micros(d).saturating_sub(self.start.elapsed()))
    }

    /// Marks the deadline as passed and kills the process tree.
    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.kill();
    }

    fn run(self: Arc<Self>) {
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(2));
            let d = self.deadline_us.load(Ordering::Relaxed);
            if d != u64::MAX && self.start.elapsed().as_micros() as u64 > d {
                self.fired.store(true, Ordering::SeqCst);
                self.kill();
                return;
            }
        }
    }
}

/// The last lines of the scheduler's stderr.
#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
}

impl Tail {
    fn text(&self) -> String {
        self.lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

fn drain_stderr(
    stderr: impl Read,
    tail: Arc<Mutex<Tail>>,
    mut log: Option<std::fs::File>,
) -> impl FnOnce() {
    move || {
        let mut r = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.by_ref().take(64 << 10).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if let Some(f) = log.as_mut() {
                let _ = f.write_all(&buf);
            }
            let line = String::from_utf8_lossy(&buf).trim_end().chars().take(500).collect();
            if let Ok(mut t) = tail.lock() {
                t.lines.push_back(line);
                if t.lines.len() > 20 {
                    t.lines.pop_front();
                }
            }
        }
    }
}

/// A running external scheduler.
pub struct External {
    name: String,
    information: Information,
    views: Views,
    stdin: Option<BufWriter<ChildStdin>>,
    lines: std::sync::mpsc::Receiver<Line>,
    child: Arc<Mutex<Child>>,
    watch: Arc<Watch>,
    tail: Arc<Mutex<Tail>>,
    options: ExternalOptions,
    fault: Option<Verdict>,
    seq: u64,
    steps_at_last: u64,
    out: Vec<u8>,
    /// When `ready` arrived: the run's total time counts from here.
    ready_at: Instant,
    /// Wall time from spawning to `ready`.
    pub handshake_time: Duration,
    /// Decisions answered.
    pub decisions: u64,
    /// Wall time spent in exchanges (writing `decide`, reading `plan`).
    pub wire: Duration,
}

impl External {
    /// Spawns `cmd` and performs the handshake for a run under `config`.
    pub fn spawn(
        cmd: &ExternalCommand,
        scenario: &str,
        config: &ModelConfig,
    ) -> Result<External, Verdict> {
        let token = next_token();
        let mut command = Command::new(&cmd.program);
        command.args(&cmd.args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.env(TOKEN_VAR, &token[TOKEN_VAR.len() + 1..]);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|e| Verdict::new(VerdictCode::SpawnFailed, format!("{}: {e}", cmd.program)))?;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
            let _ = child.kill();
            return Err(Verdict::new(VerdictCode::SpawnFailed, "pipes unavailable"));
        };
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        let watch = Arc::new(Watch {
            start: Instant::now(),
            deadline_us: AtomicU64::new(u64::MAX),
            fired: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            child: child.clone(),
            pid,
            token,
        });
        let w = watch.clone();
        std::thread::spawn(move || w.run());
        let tail = Arc::new(Mutex::new(Tail::default()));
        let log = cmd
            .options
            .stderr_log
            .as_ref()
            .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
        std::thread::spawn(drain_stderr(stderr, tail.clone(), log));
        // Stdout is read by its own thread: a read never outlives its deadline, even when a
        // descendant that escaped the kill keeps the pipe open.
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(read_lines(stdout, tx));
        let mut ext = External {
            name: cmd.program.clone(),
            information: config.information,
            views: Views::Full,
            stdin: Some(BufWriter::with_capacity(1 << 16, stdin)),
            lines,
            child,
            watch,
            tail,
            options: cmd.options.clone(),
            fault: None,
            seq: 0,
            steps_at_last: 0,
            out: Vec::new(),
            ready_at: Instant::now(),
            handshake_time: Duration::ZERO,
            decisions: 0,
            wire: Duration::ZERO,
        };
        ext.handshake(scenario, config)?;
        ext.ready_at = Instant::now();
        ext.handshake_time = ext.watch.start.elapsed();
        Ok(ext)
    }

    fn handshake(&mut self, scenario: &str, config: &ModelConfig) -> Result<(), Verdict> {
        let hello = ToScheduler::Hello(Hello {
            protocol: PROTOCOL_NAME.into(),
            version: PROTOCOL_VERSION,
            scenario: scenario.into(),
            config: config.clone(),
            capacity_tokens: config.memory.capacity().get(),
            watermark_tokens: config.memory.watermark().get(),
        });
        let fail = |v: Verdict| {
            if v.code == VerdictCode::Protocol {
                Verdict::new(VerdictCode::Handshake, v.message)
            } else {
                v
            }
        };
        self.watch.arm(self.options.handshake_timeout);
        let reply = self.send(&hello).and_then(|()| self.receive());
        self.watch.disarm();
        match reply.map_err(fail)? {
            FromScheduler::Ready(r) if r.version == PROTOCOL_VERSION => {
                self.name = r.name;
                self.information = r.information.unwrap_or(config.information);
                self.views = r.views;
                Ok(())
            }
            FromScheduler::Ready(r) => Err(Verdict::new(
                VerdictCode::Handshake,
                format!("protocol version {}; this harness speaks {PROTOCOL_VERSION}", r.version),
            )),
            FromScheduler::Error(e) => Err(scheduler_error(&e)),
            FromScheduler::Plan(_) => {
                Err(Verdict::new(VerdictCode::Handshake, "expected ready, got plan"))
            }
        }
    }

    fn io_fault(&mut self, what: &str) -> Verdict {
        if self.watch.fired.load(Ordering::SeqCst) {
            return Verdict::new(VerdictCode::Timeout, format!("no answer in time ({what})"));
        }
        // Give the process a moment to be reaped, for its exit status.
        let mut status = None;
        for _ in 0..100 {
            if let Ok(mut c) = self.child.lock() {
                if let Ok(Some(s)) = c.try_wait() {
                    status = Some(s);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let tail = self.tail.lock().map(|t| t.text()).unwrap_or_default();
        let status = status.map_or("still running".to_string(), |s| s.to_string());
        Verdict::new(
            VerdictCode::Crash,
            format!("{what}: scheduler process {status}; stderr tail:\n{tail}"),
        )
    }

    fn send(&mut self, msg: &impl Serialize) -> Result<(), Verdict> {
        self.out.clear();
        serde_json::to_writer(&mut self.out, msg).expect("messages serialize");
        self.out.push(b'\n');
        let ok = match self.stdin.as_mut() {
            Some(w) => w.write_all(&self.out).and_then(|()| w.flush()).is_ok(),
            None => false,
        };
        if ok {
            Ok(())
        } else {
            Err(self.io_fault("writing to the scheduler's stdin failed"))
        }
    }

    fn receive(&mut self) -> Result<FromScheduler, Verdict> {
        loop {
            let line = match self.watch.left() {
                Some(left) => match self.lines.recv_timeout(left) {
                    Ok(l) => l,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        self.watch.fire();
                        return Err(self.io_fault("reading the scheduler's stdout"));
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Line::End,
                },
                None => self.lines.recv().unwrap_or(Line::End),
            };
            let line = match line {
                Line::Text(l) => l,
                Line::TooLong => {
                    return Err(Verdict::new(
                        VerdictCode::Garbage,
                        format!("line longer than {MAX_LINE_BYTES} bytes"),
                    ))
                }
                Line::End => return Err(self.io_fault("end of the scheduler's stdout")),
            };
            let Ok(text) = std::str::from_utf8(&line) else {
                return Err(Verdict::new(VerdictCode::Garbage, "line is not UTF-8"));
            };
            if text.trim().is_empty() {
                continue;
            }
            return parse_from_scheduler(text).map_err(|e| {
                let excerpt: String = text.trim_end().chars().take(200).collect();
                Verdict::new(VerdictCode::Garbage, format!("{e}; line: {excerpt:?}"))
            });
        }
    }

    fn exchange(&mut self, view: &View<'_>) -> Result<Plan, Verdict> {
        let elapsed = self.ready_at.elapsed();
        let Some(left) = self.options.total_timeout.checked_sub(elapsed) else {
            return Err(Verdict::new(VerdictCode::Timeout, "total time limit of the run reached"));
        };
        self.seq += 1;
        let ran = view.steps_total() - self.steps_at_last;
        self.steps_at_last = view.steps_total();
        let ctx = DecideCtx { seq: self.seq, ran, views: self.views };
        let msg = ToScheduler::Decide(decide_of(view, &ctx));
        self.watch.arm(left.min(self.options.decision_timeout));
        let reply = self.send(&msg).and_then(|()| self.receive());
        self.watch.disarm();
        match reply? {
            FromScheduler::Plan(p) if p.seq == self.seq => p.to_plan().map_err(|e| {
                Verdict::new(VerdictCode::Garbage, format!("plan for decision {}: {e}", self.seq))
            }),
            FromScheduler::Plan(p) => Err(Verdict::new(
                VerdictCode::Protocol,
                format!("plan for decision {}, expected {}", p.seq, self.seq),
            )),
            FromScheduler::Error(e) => Err(scheduler_error(&e)),
            FromScheduler::Ready(_) => {
                Err(Verdict::new(VerdictCode::Protocol, format!("ready at decision {}", self.seq)))
            }
        }
    }

    fn shutdown(&mut self, last: Option<ToScheduler>) {
        if let Some(msg) = last {
            if self.fault.is_none() || matches!(msg, ToScheduler::Error(_)) {
                self.watch.arm(Duration::from_millis(500));
                let _ = self.send(&msg);
            }
        }
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let exited = self.child.lock().map(|mut c| !matches!(c.try_wait(), Ok(None)));
            if exited.unwrap_or(true) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.watch.stop.store(true, Ordering::Relaxed);
        self.watch.kill();
        if let Ok(mut c) = self.child.lock() {
            let _ = c.wait();
        }
    }
}

fn scheduler_error(e: &ErrorMsg) -> Verdict {
    Verdict::new(VerdictCode::SchedulerError, format!("{}: {}", e.code, e.message))
}

impl Scheduler for External {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn information(&self) -> Information {
        self.information
    }

    fn decide(&mut self, view: &View<'_>) -> Plan {
        if self.fault.is_some() {
            return poisoned_plan();
        }
        let t0 = Instant::now();
        let result = self.exchange(view);
        self.wire += t0.elapsed();
        match result {
            Ok(plan) => {
                self.decisions += 1;
                plan
            }
            Err(v) => {
                self.fault = Some(v.at(view.now_ns().get()));
                poisoned_plan()
            }
        }
    }
}

impl Runnable for External {
    fn take_fault(&mut self) -> Option<Verdict> {
        self.fault.take()
    }

    fn decisions(&self) -> u64 {
        self.decisions
    }

    fn wire_time(&self) -> Duration {
        self.wire
    }

    fn finish(&mut self, how: Finish) {
        let msg = match how {
            Finish::Ended { t, completed } => Some(ToScheduler::End(End { t, completed })),
            Finish::Rejected(v) => Some(ToScheduler::Error(ErrorMsg {
                code: v.code.as_str().into(),
                message: v.message.clone(),
                seq: Some(self.seq),
            })),
            Finish::Abandoned => None,
        };
        self.shutdown(msg);
    }
}

impl Drop for External {
    fn drop(&mut self) {
        if !self.watch.stop.load(Ordering::Relaxed) {
            self.shutdown(None);
        }
    }
}
