//! Keeps `matrix.md` honest: every `server` statement names a test in `tests/conformance/` (or in
//! one of the [`OUTSIDE`] files) that exists, is a `#[test]` and is not ignored, or is listed in
//! [`ALLOWANCE`] with the reason it has none yet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `server` statements without a test yet, per version, each with the reason. The check fails
/// when one of these gains a test (take it off the list) or stops being a `server` row.
const ALLOWANCE: &[(&str, &str, &str)] = &[];

/// Test files outside `tests/conformance/` a row may name by their path from the crate root
/// (`tests/listeners.rs::fn`): the real-socket tests of the transports (TCP, TLS, WebSocket),
/// which `TestBroker` cannot reach. They run under the default features, as CI runs them.
const OUTSIDE: &[&str] = &["tests/listeners.rs"];

const STATUSES: &[&str] = &["server", "server-known-bug", "client-only", "n/a"];

#[derive(Debug)]
struct Row {
    version: String,
    id: String,
    status: String,
    third: String,
    line: usize,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// `MQTT-a.b.c-n` with decimal numbers.
fn well_formed_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("MQTT-") else { return false };
    let Some((sec, n)) = rest.split_once('-') else { return false };
    let parts: Vec<&str> = sec.split('.').collect();
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 3 && parts.iter().all(|p| num(p)) && num(n)
}

fn parse(text: &str) -> Result<Vec<Row>, Vec<String>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut version = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some(h) = line.strip_prefix("## MQTT ") {
            version = Some(h.trim().to_string());
            continue;
        }
        if !line.starts_with("| MQTT") {
            continue;
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        let Some(v) = version.clone() else {
            errors.push(format!("line {line_no}: a statement row before any `## MQTT x` heading"));
            continue;
        };
        if cells.len() != 4 {
            errors.push(format!("line {line_no}: {} cells, want 4", cells.len()));
            continue;
        }
        let (id, status, third) = (cells[0], cells[1], cells[2]);
        if !well_formed_id(id) {
            errors.push(format!("line {line_no}: malformed id `{id}`"));
        }
        if !STATUSES.contains(&status) {
            errors.push(format!("line {line_no}: {id}: unknown status `{status}`"));
        }
        if third.is_empty() || cells[3].is_empty() {
            errors.push(format!("line {line_no}: {id}: empty test/reason or summary"));
        }
        rows.push(Row { version: v, id: id.into(), status: status.into(), third: third.into(), line: line_no });
    }
    if errors.is_empty() { Ok(rows) } else { Err(errors) }
}

/// Finds `fn name(` in `file` and whether the attributes right above it include `#[ignore`.
fn find_test(sources: &BTreeMap<String, String>, file: &str, name: &str) -> Result<bool, String> {
    let shown = if file.ends_with(".rs") { file.to_string() } else { format!("{file}.rs") };
    let src = sources.get(file).ok_or_else(|| {
        if file.contains('/') { format!("no file {shown} (allowed outside tests/conformance/: {OUTSIDE:?})") } else { format!("no file tests/conformance/{shown}") }
    })?;
    let needle = format!("fn {name}(");
    let at = src.find(&needle).ok_or_else(|| format!("no `fn {name}` in {shown}"))?;
    // the lines above the one holding `fn`
    let before = &src[..src[..at].rfind('\n').unwrap_or(0)];
    let mut ignored = false;
    let mut is_test = false;
    for l in before.lines().rev() {
        let l = l.trim();
        if l.starts_with("#[") {
            ignored |= l.starts_with("#[ignore");
            is_test |= l == "#[test]";
        } else if !(l.starts_with("//") || l.is_empty()) {
            break;
        }
    }
    if !is_test {
        return Err(format!("`{file}::{name}` is not a #[test]"));
    }
    Ok(ignored)
}

fn check(rows: &[Row], sources: &BTreeMap<String, String>, allowance_list: &[(&str, &str, &str)]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    let allowance: BTreeMap<(&str, &str), &str> = allowance_list.iter().map(|&(v, id, why)| ((v, id), why)).collect();
    for &(v, id, why) in allowance_list {
        if why.trim().is_empty() {
            errors.push(format!("allowance {v} {id}: no reason"));
        }
    }
    let mut allowed_seen = BTreeSet::new();
    for r in rows {
        if !seen.insert((r.version.clone(), r.id.clone())) {
            errors.push(format!("line {}: duplicate {} {}", r.line, r.version, r.id));
        }
        let allowed = allowance.contains_key(&(r.version.as_str(), r.id.as_str()));
        if allowed {
            allowed_seen.insert((r.version.clone(), r.id.clone()));
        }
        if r.status != "server" && r.status != "server-known-bug" {
            if allowed {
                errors.push(format!("line {}: {} is `{}` but in the allowance", r.line, r.id, r.status));
            }
            continue;
        }
        if r.third == "—" {
            if !allowed {
                errors.push(format!("line {}: {} {} is a server statement without a test", r.line, r.version, r.id));
            }
            continue;
        }
        if allowed {
            errors.push(format!("line {}: {} {} has a test now: take it off the allowance", r.line, r.version, r.id));
        }
        // `file::fn`, then (for known bugs) a description after the name
        let name = r.third.split_whitespace().next().unwrap_or("");
        let Some((file, func)) = name.split_once("::") else {
            errors.push(format!("line {}: {}: `{}` is not file::fn", r.line, r.id, r.third));
            continue;
        };
        match find_test(sources, file, func) {
            Err(e) => errors.push(format!("line {}: {}: {e}", r.line, r.id)),
            Ok(true) if r.status == "server" => {
                errors.push(format!("line {}: {}: `{name}` is #[ignore]d: mark the row server-known-bug and describe the bug", r.line, r.id))
            }
            Ok(false) if r.status == "server-known-bug" => {
                errors.push(format!("line {}: {}: `{name}` runs: the bug is fixed, mark the row server", r.line, r.id))
            }
            Ok(_) => {
                if r.status == "server-known-bug" && r.third.split_whitespace().count() < 3 {
                    errors.push(format!("line {}: {}: describe the bug after the test name", r.line, r.id));
                }
            }
        }
    }
    for &(v, id, _) in allowance_list {
        if !allowed_seen.contains(&(v.to_string(), id.to_string())) {
            errors.push(format!("allowance {v} {id}: no such row in matrix.md"));
        }
    }
    errors
}

fn sources() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            out.insert(stem, std::fs::read_to_string(&p).unwrap());
        }
    }
    for rel in OUTSIDE {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        out.insert(rel.to_string(), std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}")));
    }
    out
}

/// Per version: (total, server, server-known-bug, client-only, n/a, tested, remaining).
fn counts(rows: &[Row]) -> BTreeMap<String, [usize; 7]> {
    let mut out: BTreeMap<String, [usize; 7]> = BTreeMap::new();
    for r in rows {
        let c = out.entry(r.version.clone()).or_default();
        c[0] += 1;
        match r.status.as_str() {
            "server" => c[1] += 1,
            "server-known-bug" => c[2] += 1,
            "client-only" => c[3] += 1,
            _ => c[4] += 1,
        }
        if r.status == "server" && r.third != "—" {
            c[5] += 1;
        }
        if r.status.starts_with("server") && (r.third == "—" || r.status == "server-known-bug") {
            c[6] += 1;
        }
    }
    out
}

#[test]
fn every_server_statement_in_the_matrix_names_a_test_that_runs() {
    let text = std::fs::read_to_string(dir().join("matrix.md")).unwrap();
    let rows = match parse(&text) {
        Ok(r) => r,
        Err(e) => panic!("matrix.md is malformed:\n{}", e.join("\n")),
    };
    let errors = check(&rows, &sources(), ALLOWANCE);
    for (v, c) in counts(&rows) {
        eprintln!("MQTT {v}: {} statements, {} server ({} tested, {} known bugs, {} without test), {} client-only, {} n/a", c[0], c[1] + c[2], c[5], c[2], c[6] - c[2], c[3], c[4]);
    }
    assert!(errors.is_empty(), "matrix.md:\n{}", errors.join("\n"));
}

#[test]
fn the_matrix_lists_251_statements_of_mqtt_5_and_141_of_mqtt_3_1_1() {
    let text = std::fs::read_to_string(dir().join("matrix.md")).unwrap();
    let rows = parse(&text).unwrap_or_default();
    let c = counts(&rows);
    assert_eq!(c.get("5.0").map(|c| c[0]), Some(251));
    assert_eq!(c.get("3.1.1").map(|c| c[0]), Some(141));
}

#[test]
fn the_check_catches_missing_ignored_duplicate_and_malformed_rows() {
    let mut src = BTreeMap::new();
    src.insert("f".to_string(), "#[test]\nfn ok() {}\n#[test]\n#[ignore = \"BUG: x\"]\nfn bad() {}\nfn helper() {}\n".to_string());
    src.insert("tests/listeners.rs".to_string(), "#[test]\nfn ws() {}\nfn ws_helper() {}\n".to_string());
    let run = |body: &str| {
        let text = format!("## MQTT 5.0\n\n{body}");
        match parse(&text) {
            Ok(rows) => check(&rows, &src, &[("5.0", "MQTT-9.9.9-9", "not yet")]),
            Err(e) => e,
        }
    };
    let allowed = "| MQTT-9.9.9-9 | server | — | x |\n";
    assert!(run(&format!("| MQTT-1.2.3-4 | server | f::ok | x |\n{allowed}")).is_empty());
    assert!(run(&format!("| MQTT-1.2.3-4 | server-known-bug | f::bad the flag is ignored | x |\n{allowed}")).is_empty());
    assert!(run(&format!("| MQTT-1.2.3-4 | client-only | the client does it | x |\n{allowed}")).is_empty());
    // a listener-level test, named by its path from the crate root
    assert!(run(&format!("| MQTT-1.2.3-4 | server | tests/listeners.rs::ws | x |\n{allowed}")).is_empty());
    // the allowed row missing, or given a test while still allowed
    assert!(!run("| MQTT-1.2.3-4 | server | f::ok | x |\n").is_empty());
    assert!(!run("| MQTT-9.9.9-9 | server | f::ok | x |\n").is_empty());
    for bad in [
        "| MQTT-1.2.3-4 | server | f::missing | x |\n",
        "| MQTT-1.2.3-4 | server | f::bad | x |\n",
        "| MQTT-1.2.3-4 | server | f::helper | x |\n",
        "| MQTT-1.2.3-4 | server | — | x |\n",
        "| MQTT-1.2.3-4 | server | g::ok | x |\n",
        "| MQTT-1.2.3-4 | server | tests/listeners.rs::missing | x |\n",
        "| MQTT-1.2.3-4 | server | tests/listeners.rs::ws_helper | x |\n",
        "| MQTT-1.2.3-4 | server | tests/other.rs::ws | x |\n",
        "| MQTT-1.2.3-4 | server-known-bug | f::ok fixed | x |\n",
        "| MQTT-1.2.3 | server | f::ok | x |\n",
        "| MQTT-1.2.3-4 | sever | f::ok | x |\n",
        "| MQTT-1.2.3-4 | server | f::ok | x |\n| MQTT-1.2.3-4 | server | f::ok | x |\n",
    ] {
        assert!(!run(&format!("{bad}{allowed}")).is_empty(), "should fail: {bad}");
    }
}
