//! Tidy: style and traceability rules enforced as a test (rust-analyzer's and TigerBeetle's
//! tidy).
//!
//! - Every `.rs` file starts with a `//!` module doc.
//! - No line is longer than 100 columns.
//! - `spec/CLAIMS.md` and the tests agree: a test that cites a claim (`/// Checks <ID>`, an ID
//!   such as `W-TABLE2`) cites a known ID, and every claim marked `tested` lists tests that exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && !["target", ".git", "report", "snapshots"].contains(&name) {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["src", "spec", "verify", "gpu-check", "tests", "benches"] {
        rust_files(&root().join(dir), &mut files);
    }
    files
}

#[test]
fn every_rust_file_starts_with_a_module_doc_and_fits_100_columns() {
    let mut problems = Vec::new();
    for f in all_rust_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("{rel}: does not start with a `//!` module doc"));
        }
        for (i, line) in text.lines().enumerate() {
            if line.chars().count() > 100 {
                problems.push(format!("{rel}:{}: line longer than 100 columns", i + 1));
            }
        }
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

/// Claim ID -> (status, tests).
fn claims() -> BTreeMap<String, (String, Vec<String>)> {
    let text = std::fs::read_to_string(root().join("spec/CLAIMS.md")).unwrap();
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("### ") {
            current = Some(id.trim().to_string());
            out.insert(id.trim().to_string(), (String::new(), Vec::new()));
        } else if let (Some(id), Some(rest)) = (&current, line.strip_prefix("- status:")) {
            out.get_mut(id).unwrap().0 = rest.trim().to_string();
        } else if let (Some(id), Some(rest)) = (&current, line.strip_prefix("- tests:")) {
            let tests = rest.split(',').map(|t| t.trim().trim_matches('`').to_string());
            out.get_mut(id).unwrap().1 = tests.filter(|t| !t.is_empty()).collect();
        }
    }
    out
}

#[test]
fn claims_registry_and_tests_agree() {
    let claims = claims();
    assert!(claims.len() >= 25, "CLAIMS.md lists only {} claims", claims.len());
    let sources: Vec<(String, String)> = all_rust_files()
        .into_iter()
        .map(|f| (f.display().to_string(), std::fs::read_to_string(&f).unwrap()))
        .collect();
    let mut problems = Vec::new();
    for (file, text) in &sources {
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix("/// Checks ") else { continue };
            let id: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            // A citation is an ID: an upper-case prefix, a dash, more (e.g. `W-TABLE2`).
            let looks_like_id =
                id.len() > 2 && id.as_bytes()[0].is_ascii_uppercase() && id.as_bytes()[1] == b'-';
            if looks_like_id && !claims.contains_key(&id) {
                problems.push(format!("{file}: cites unknown claim {id:?}"));
            }
        }
    }
    for (id, (status, tests)) in &claims {
        match status.as_str() {
            "pending" => {}
            "tested" => {
                if tests.is_empty() {
                    problems.push(format!("{id}: tested but lists no test"));
                }
                for t in tests {
                    let needle = format!("fn {t}(");
                    if !sources.iter().any(|(_, text)| text.contains(&needle)) {
                        problems.push(format!("{id}: test {t} does not exist"));
                    }
                }
            }
            other => problems.push(format!("{id}: status {other:?} is not pending or tested")),
        }
    }
    assert!(problems.is_empty(), "claims registry:\n{}", problems.join("\n"));
}
