//! The protocol's replica (`kvsched::protocol::Replica`, over the engine's event-driven
//! `sim::Follower`) rebuilds, from `decide` messages alone, the view the engine gives: at every
//! decision of a run, in full and in delta views, the two views agree on time, memory and both
//! queues, and every built-in scheduler decides the same on the replica as on the engine.

use kvsched::conform::battery;
use kvsched::protocol::wire::{decide_of, DecideCtx, Hello, Views, PROTOCOL_NAME};
use kvsched::protocol::{Replica, PROTOCOL_VERSION};
use kvsched::sim::{simulate, Plan, Scheduler, SimOptions, View};
use kvsched_spec::{Information, Instance, Nanos, Tokens};

/// What a view shows: time, memory, the waiting ids, the residents (id, prefilled, generated,
/// admission number), whether arrivals are done.
type Snapshot = (Nanos, Tokens, Vec<u32>, Vec<(u32, u64, u64, u64)>, bool);

fn snapshot(v: &View<'_>) -> Snapshot {
    let waiting = v.waiting().map(|r| r.id().0).collect();
    let running = v
        .running()
        .map(|r| (r.id().0, r.prefilled().get(), r.generated().get(), r.admitted_seq()))
        .collect();
    (v.now_ns(), v.kv_used(), waiting, running, v.arrivals_done())
}

/// A scheduler that records what its view shows before it decides.
struct Recording {
    inner: Box<dyn Scheduler>,
    seen: Option<Snapshot>,
}

impl Scheduler for Recording {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn information(&self) -> Information {
        self.inner.information()
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        self.seen = Some(snapshot(view));
        self.inner.decide(view)
    }
}

/// Runs a scheduler on the engine and a second copy on the replica, comparing at every
/// decision.
struct Twin {
    engine: Box<dyn Scheduler>,
    on_replica: Recording,
    replica: Replica,
    views: Views,
    seq: u64,
    steps_at_last: u64,
    /// (evictions seen, chunked prefills seen, completions seen): the runs reach such states.
    seen: (u64, u64, u64),
}

impl Scheduler for Twin {
    fn name(&self) -> String {
        self.engine.name()
    }
    fn information(&self) -> Information {
        self.engine.information()
    }
    fn decide(&mut self, view: &View<'_>) -> Plan {
        self.seq += 1;
        let ran = view.steps_total() - self.steps_at_last;
        self.steps_at_last = view.steps_total();
        let msg = decide_of(view, &DecideCtx { seq: self.seq, ran, views: self.views });
        self.replica.update(&msg).expect("the replica accepts the engine's messages");
        let theirs = self.replica.decide(&mut self.on_replica);
        let at = format!("{} {:?} decision {}", self.name(), self.views, self.seq);
        assert_eq!(self.on_replica.seen.take(), Some(snapshot(view)), "{at}");
        let plan = self.engine.decide(view);
        let ours = Plan {
            batch: plan.expanded(view),
            decode_all: false,
            hold: Vec::new(),
            ..plan.clone()
        };
        assert_eq!(ours, theirs, "{at}");
        self.seen.0 += ours.evict.len() as u64;
        self.seen.1 += ours
            .batch
            .iter()
            .filter(|i| match i {
                kvsched_spec::BatchItem::Prefill { id, tokens } => {
                    view.request(*id).is_some_and(|r| *tokens < r.prompt_tokens())
                }
                _ => false,
            })
            .count() as u64;
        self.seen.2 += view.completed_since_last().len() as u64;
        plan
    }
}

fn twin_run(name: &str, instance: &Instance, views: Views) -> (u64, u64, u64) {
    let engine = kvsched::schedulers::by_name(name).unwrap();
    let information = engine.information();
    let config = instance.config.clone();
    let hello = Hello {
        protocol: PROTOCOL_NAME.into(),
        version: PROTOCOL_VERSION,
        scenario: "twin".into(),
        capacity_tokens: config.memory.capacity().get(),
        watermark_tokens: config.memory.watermark().get(),
        config,
    };
    let mut twin = Twin {
        engine,
        on_replica: Recording { inner: kvsched::schedulers::by_name(name).unwrap(), seen: None },
        replica: Replica::new(&hello, information, views).unwrap(),
        views,
        seq: 0,
        steps_at_last: 0,
        seen: (0, 0, 0),
    };
    let mut instance = instance.clone();
    instance.config.information = information;
    let out = simulate(&instance, &mut twin, SimOptions::default());
    out.unwrap_or_else(|e| panic!("{name} {views:?}: {e}"));
    twin.seen
}

#[test]
fn the_replica_shows_what_the_engine_shows_and_every_scheduler_decides_the_same() {
    let mut seen = (0, 0, 0);
    for scenario in ["overload", "adversarial", "tiny"] {
        let s = battery::scenario(scenario, 40, 3).unwrap();
        for entry in kvsched::schedulers::catalog() {
            for views in [Views::Full, Views::Delta] {
                let (e, c, d) = twin_run(entry.name, &s.instance, views);
                seen = (seen.0 + e, seen.1 + c, seen.2 + d);
            }
        }
    }
    // The runs reach evictions, chunked prefills and completions.
    assert!(seen.0 > 0 && seen.1 > 0 && seen.2 > 0, "{seen:?}");
}
