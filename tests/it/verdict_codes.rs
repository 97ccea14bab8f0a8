//! Tidy: `spec/PROTOCOL.md`'s "Verdicts" table and [`VerdictCode`] name the same codes, both
//! ways, with the same categories. The check is run on doctored copies of the table too, to
//! show that it can fail.

use kvsched::conform::VerdictCode;
use std::collections::{BTreeMap, BTreeSet};

fn protocol_md() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/PROTOCOL.md");
    std::fs::read_to_string(path).unwrap()
}

/// Every code of the "Verdicts" table (a backticked word in the code column) with the
/// categories of the rows it appears in (`pass` for the row with no category).
fn table(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let section = doc.split("\n## Verdicts\n").nth(1).unwrap_or("");
    let section = section.split("\n## ").next().unwrap_or("");
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(category), Some(codes)) = (cells.get(1), cells.get(2)) else { continue };
        if *codes == "code" || codes.starts_with("---") {
            continue;
        }
        let category = if category.is_empty() { "pass" } else { category };
        for code in codes.split('`').skip(1).step_by(2) {
            out.entry(code.to_string()).or_default().insert(category.to_string());
        }
    }
    out
}

/// What differs between the table in `doc` and the enum.
fn mismatches(doc: &str) -> Vec<String> {
    let table = table(doc);
    let mut problems = Vec::new();
    for (code, categories) in &table {
        match VerdictCode::ALL.iter().find(|c| c.as_str() == code) {
            None => problems.push(format!("{code}: in PROTOCOL.md, not a VerdictCode")),
            Some(c) if !categories.contains(c.category()) => problems.push(format!(
                "{code}: category {} in the enum, {categories:?} in PROTOCOL.md",
                c.category()
            )),
            Some(_) => {}
        }
    }
    for c in VerdictCode::ALL {
        if !table.contains_key(c.as_str()) {
            problems.push(format!("{}: a VerdictCode missing from PROTOCOL.md", c.as_str()));
        }
    }
    problems
}

#[test]
fn protocol_md_verdicts_match_the_enum_both_ways() {
    let doc = protocol_md();
    // Not vacuous: the table was found and read.
    assert!(table(&doc).len() >= 20, "{:?}", table(&doc));
    let problems = mismatches(&doc);
    assert!(problems.is_empty(), "spec/PROTOCOL.md vs VerdictCode:\n{}", problems.join("\n"));
}

#[test]
fn the_verdict_table_check_catches_doctored_tables() {
    let doc = protocol_md();
    // A code dropped from the table.
    let dropped = doc.replace("`engine_error`", "engine error");
    assert_eq!(mismatches(&dropped), ["engine_error: a VerdictCode missing from PROTOCOL.md"]);
    // A code the enum does not have.
    let added = doc.replace("| process | `panic` |", "| process | `panic`, `hiccup` |");
    assert_eq!(mismatches(&added), ["hiccup: in PROTOCOL.md, not a VerdictCode"]);
    // A code under the wrong category.
    let moved = doc.replace("| liveness | `livelock` |", "| process | `livelock` |");
    assert_eq!(mismatches(&moved).len(), 1, "{:?}", mismatches(&moved));
    // No table at all.
    assert_eq!(mismatches("# nothing\n").len(), VerdictCode::ALL.len());
}

/// A policy that reads predictions, run on an instance that has none: the engine stops
/// (`MissingPrediction`), which is not the scheduler's fault, and the verdict says so.
#[test]
fn an_engine_stop_the_scheduler_did_not_cause_is_engine_error() {
    use kvsched::conform::{run::run_instance, ConformConfig, InProcess};
    use kvsched::sim::{Plan, Scheduler, View};
    use kvsched_spec::Information;
    struct ReadsPredictions(Box<dyn Scheduler>);
    impl Scheduler for ReadsPredictions {
        fn name(&self) -> String {
            self.0.name()
        }
        fn information(&self) -> Information {
            Information::Predicted
        }
        fn decide(&mut self, view: &View<'_>) -> Plan {
            self.0.decide(view)
        }
    }
    let factory = || -> Box<dyn Scheduler> {
        Box::new(ReadsPredictions(kvsched::schedulers::by_name("vllm-v0").unwrap()))
    };
    let cfg = ConformConfig { information: Information::Predicted, ..ConformConfig::quick() };
    let mut s = kvsched::conform::battery::scenario("tiny", 5, 1).unwrap();
    let with = run_instance(&InProcess { factory }, "tiny", &s.instance, 1, &cfg);
    assert_eq!(with.verdict.code, VerdictCode::Pass, "{}", with.verdict);
    for r in &mut s.instance.requests {
        r.predicted_output_tokens = None;
    }
    let without = run_instance(&InProcess { factory }, "tiny", &s.instance, 1, &cfg);
    assert_eq!(without.verdict.code, VerdictCode::EngineError, "{}", without.verdict);
    assert_eq!(without.verdict.category(), "engine");
}
