//! Check mode: replay every engine action through `kvsched_spec::apply` and compare.
//!
//! The engine (`super::core`) and the spec (`kvsched_spec::model`) implement the same rules
//! independently. Here each action the engine takes is applied to a spec `State` as well, and
//! time, memory and completions must agree exactly (TigerBeetle's pair assertions).

use super::core::{Core, StepDone};
use super::SimErrorKind;
use kvsched_spec::{
    apply_mut, Action, BatchItem, CompiledStepTime, Instance, Nanos, RequestId, State,
};

pub(super) struct Mirror<'a> {
    instance: &'a Instance,
    step_time: CompiledStepTime,
    state: State,
}

fn diverged(what: String) -> SimErrorKind {
    SimErrorKind::Divergence(what)
}

impl<'a> Mirror<'a> {
    pub(super) fn new(instance: &'a Instance) -> Mirror<'a> {
        let step_time = instance.config.step_time.compile().expect("validated instance");
        Mirror { instance, step_time, state: State::init(instance) }
    }

    fn apply(&mut self, action: &Action) -> Result<kvsched_spec::StepReport, SimErrorKind> {
        apply_mut(self.instance, &self.step_time, &mut self.state, action)
            .map_err(|v| diverged(format!("engine accepted {action:?}, spec rejects it: {v}")))
    }

    fn compare(&self, core: &Core, after: &str) -> Result<(), SimErrorKind> {
        let s = &self.state;
        if s.time_ns != core.now || s.kv_used != core.kv_used || s.completed != core.completed {
            return Err(diverged(format!(
                "after {after}: spec (t={}, kv={}, done={}) vs engine (t={}, kv={}, done={})",
                s.time_ns, s.kv_used, s.completed, core.now, core.kv_used, core.completed
            )));
        }
        self.state
            .check_invariants(self.instance)
            .map_err(|e| diverged(format!("after {after}: {e}")))
    }

    pub(super) fn arrive(&mut self, id: RequestId) -> Result<(), SimErrorKind> {
        self.apply(&Action::Arrive(id))?;
        Ok(())
    }

    pub(super) fn evict(&mut self, id: RequestId, core: &Core) -> Result<(), SimErrorKind> {
        self.apply(&Action::Evict(id))?;
        let (spec, engine) = (self.state.requests[id.index()].kept, core.slots[id].kept);
        if spec != engine {
            return Err(diverged(format!("evict {id}: spec keeps {spec}, engine keeps {engine}")));
        }
        self.compare(core, &format!("evict {id}"))
    }

    pub(super) fn idle(&mut self, until: Nanos) -> Result<(), SimErrorKind> {
        self.apply(&Action::Idle { until_ns: until })?;
        Ok(())
    }

    pub(super) fn step(
        &mut self,
        items: &[BatchItem],
        done: &StepDone,
        core: &Core,
    ) -> Result<(), SimErrorKind> {
        let action = Action::Step(items.to_vec());
        let mut completed = Vec::new();
        for _ in 0..done.repeat {
            let report = self.apply(&action)?;
            completed.extend(report.completed);
        }
        if completed != done.completed {
            return Err(diverged(format!(
                "completions: spec {completed:?} vs engine {:?}",
                done.completed
            )));
        }
        self.compare(core, &format!("step at {} x{}", done.start_ns, done.repeat))
    }
}
