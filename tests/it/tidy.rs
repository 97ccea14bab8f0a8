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

/// The floors of the root crate (ARCHITECTURE.md, "Floors"): a module may name only modules on
/// lower floors. `cli` lives in the binary, on top of everything.
const FLOORS: &[(&str, u32)] = &[
    ("prng", 0),
    ("sim", 1),
    ("opt", 1),
    ("workload", 2),
    ("schedulers", 3),
    ("protocol", 4),
    ("run", 4),
    ("conform", 5),
    ("experiments", 5),
    ("cli", 6),
];

/// Every `crate::MODULE` a source text names outside comments, with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // Code, and the intra-doc links of doc comments (they are imports for rustdoc);
        // plain comments are skipped.
        let t = line.trim_start();
        let code = if t.starts_with("///") || t.starts_with("//!") {
            line
        } else {
            line.split("//").next().unwrap_or("")
        };
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let name: String =
                tail.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                out.push((i + 1, name));
            }
            rest = tail;
        }
    }
    out
}

/// Upward or sideways imports between the root crate's modules: `FILE:LINE: A names B`.
fn layering_violations(files: &[(String, String)]) -> Vec<String> {
    let floor = |m: &str| FLOORS.iter().find(|(n, _)| *n == m).map(|f| f.1);
    let mut bad = Vec::new();
    for (path, text) in files {
        let module = path.trim_start_matches("src/").split(['/', '.']).next().unwrap_or("");
        let Some(own) = floor(module) else { continue };
        for (line, name) in crate_paths(text) {
            match floor(&name) {
                Some(f) if name != module && f >= own => {
                    bad.push(format!(
                        "{path}:{line}: {module} (floor {own}) names {name} (floor {f})"
                    ));
                }
                None if !name.is_empty() && name != "spec" => {
                    bad.push(format!("{path}:{line}: {name} is on no floor (add it to FLOORS)"));
                }
                _ => {}
            }
        }
    }
    bad
}

/// No module of the root crate imports one on its own floor or above (no circle, no arrow
/// back up), every module is on a floor, and the library never names the CLI. The check is
/// shown to catch a doctored import in each direction.
#[test]
fn modules_import_only_from_lower_floors() {
    let base = root();
    let mut files = Vec::new();
    let mut stack = vec![base.join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("src is readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(&base).expect("under root").display().to_string();
                files.push((rel, std::fs::read_to_string(&p).expect("readable")));
            }
        }
    }
    let top: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("src/"))
        .map(|p| p.split(['/', '.']).next().unwrap_or("").to_string())
        .filter(|m| m != "lib" && m != "main")
        .collect();
    for m in &top {
        assert!(FLOORS.iter().any(|(n, _)| n == m), "src/{m} is on no floor: add it to FLOORS");
    }
    let bad = layering_violations(&files);
    assert!(bad.is_empty(), "imports against the floors:\n{}", bad.join("\n"));
    // The check can fail: an arrow back up, and one sideways.
    let up = vec![("src/sim/core.rs".to_string(), "use crate::schedulers::mem;".to_string())];
    assert_eq!(layering_violations(&up).len(), 1);
    let side =
        vec![("src/conform/x.rs".into(), "let _ = crate::experiments::Scale::Quick;".into())];
    assert_eq!(layering_violations(&side).len(), 1);
    let doc_link = vec![("src/sim/core.rs".into(), "/// see [`crate::cli`]".into())];
    assert_eq!(layering_violations(&doc_link).len(), 1);
    let comment = vec![("src/sim/core.rs".into(), "// unlike crate::cli".into())];
    assert!(layering_violations(&comment).is_empty());
}
