//! The rendering of a `kvsched reproduce` report (a [`Report`] that `report` assembled): the
//! Markdown tables (one row per claim, one row per sub-measurement), `index.md` (the table,
//! the figures, the details, the wall times), the SVG figures, and [`write`], which puts them
//! and `results.json` (the [`Report`] serialized as it is) into the report directory.

use super::figures::render_svg;
use super::report::{ClaimEntry, Report};
use std::path::Path;

/// `x` rounded to `digits` significant digits, printed without exponent for moderate values.
pub fn sig(x: f64, digits: i32) -> String {
    if !x.is_finite() {
        return if x.is_nan() { "nan".into() } else { "inf".into() };
    }
    if x == 0.0 {
        return "0".into();
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..=9).contains(&mag) {
        return format!("{:.*e}", (digits - 1).max(0) as usize, x);
    }
    let decimals = (digits - 1 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() {
        return s[1..].to_string();
    }
    s
}

/// One result as `value [lo, hi]` with 4 significant digits.
pub fn value_text(measured: Option<f64>, ci: Option<(f64, f64)>) -> String {
    match (measured, ci) {
        (Some(m), Some((lo, hi))) => format!("{} [{}, {}]", sig(m, 4), sig(lo, 4), sig(hi, 4)),
        (Some(m), None) => sig(m, 4),
        (None, _) => "-".into(),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The summary table (Markdown): claim, statement, paper value, ours (4 significant digits),
/// verdict, figures.
pub fn summary_table(entries: &[ClaimEntry]) -> String {
    let mut out = String::from(
        "| claim | statement | paper | ours [CI] | verdict | figure |\n|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let mut ours: Vec<String> = e
            .results
            .iter()
            .take(4)
            .map(|r| {
                let v = value_text(r.measured, r.ci);
                if r.label.is_empty() {
                    v
                } else {
                    format!("{}: {v}", r.label)
                }
            })
            .collect();
        if e.results.len() > 4 {
            ours.push(format!("(+{} more, see details)", e.results.len() - 4));
        }
        let ours = if ours.is_empty() { "-".to_string() } else { ours.join("; ") };
        let figs: Vec<String> = e.figures.iter().map(|f| format!("[{f}]({f})")).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            e.id,
            cell(&e.statement),
            cell(&e.paper_text),
            cell(&ours),
            cell(&e.verdict.to_string()),
            figs.join(" ")
        ));
    }
    out
}

/// Every sub-measurement, one row each (Markdown; 4 significant digits): what the snapshot
/// tests pin down.
pub fn results_table(entries: &[ClaimEntry]) -> String {
    let mut out = String::from(
        "| claim | measurement | paper | ours [CI] | verdict |\n|---|---|---|---|---|\n",
    );
    for r in entries.iter().flat_map(|e| e.results.iter()) {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.id,
            cell(&r.label),
            cell(&r.paper_text),
            value_text(r.measured, r.ci),
            cell(&r.verdict.to_string())
        ));
    }
    out
}

/// `index.md`.
pub fn index_md(r: &Report) -> String {
    let count = |code| r.count(code);
    let mut out = format!(
        "# kvsched reproduce: {:?} run, seed {}\n\n{} claims: {} supported, {} not supported, \
         {} not reproducible here. Every number is in `results.json` (with seeds and \
         configuration). Intervals are 95% confidence intervals unless the details say they \
         are input-rounding ranges.\n\n",
        r.scale,
        r.seed,
        r.claims.len(),
        count("supported"),
        count("not_supported"),
        count("not_reproducible"),
    );
    out.push_str(&summary_table(&r.claims));
    out.push_str("\n## Figures\n\n");
    for f in &r.figures {
        out.push_str(&format!(
            "### {}\n\nClaims: {}\n\n![{}]({})\n\n",
            f.file,
            f.claims.join(", "),
            f.file,
            f.file
        ));
    }
    out.push_str("## Details\n\n");
    for e in &r.claims {
        out.push_str(&format!("### {}\n\n- source: {}\n", e.id, e.source));
        for res in &e.results {
            out.push_str(&format!(
                "- {}: paper {}, ours {}, {}{}\n",
                if res.label.is_empty() { "value" } else { &res.label },
                res.paper_text,
                value_text(res.measured, res.ci),
                res.verdict,
                if res.notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", cell(&res.notes))
                }
            ));
        }
        out.push('\n');
    }
    let times: Vec<String> =
        r.experiments.iter().map(|e| format!("{} {:.1} s", e.name, e.seconds)).collect();
    out.push_str(&format!(
        "Experiment wall times ({} threads): {}.\n",
        r.threads,
        times.join(", ")
    ));
    out
}

/// Writes `index.md`, `results.json` and the figures into `dir`.
pub fn write(r: &Report, dir: &Path) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    // Each file is written whole under a temporary name, then renamed: an interrupted write
    // leaves the previous file or the new one, never half of one.
    let put = |name: &str, text: &str| {
        let p = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &p)).map_err(|e| err(&p, e))
    };
    for f in &r.figures {
        let svg = render_svg(f).map_err(|e| format!("{}: {e}", f.file))?;
        put(&f.file, &svg)?;
    }
    let json = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
    put("results.json", &json)?;
    put("index.md", &index_md(r))
}
