//! `qcc logs`: the request history (`store/requestlog.rs`) searched from the shell: the JSON
//! access log of the running proxy (or `--file`), its rotated files included, newest first.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::requestlog::{self, Filter};

#[derive(Debug, Clone, Default)]
pub struct LogsArgs {
    pub filter: Filter,
    pub file: Option<PathBuf>,
    pub n: usize,
    pub json: bool,
}

/// The access log: `--file`, else the one the running proxy writes.
fn log_path(home: &Path, args: &LogsArgs) -> Result<PathBuf> {
    if let Some(f) = &args.file {
        return Ok(f.clone());
    }
    let running = super::control::status_json(home).ok();
    match running.as_ref().and_then(|s| s.pointer("/settings/access_log")).and_then(Value::as_str) {
        Some("-") => Err(Error::Invalid("the running proxy writes its access log to stderr; give --file PATH".into())),
        Some(p) => Ok(PathBuf::from(p)),
        None if running.is_some() => Err(Error::Invalid(
            "the running proxy keeps no request history (it was started with --no-access-log): give --file PATH"
                .into(),
        )),
        // No proxy runs: the history a proxy of this $QCC_HOME keeps by default, when there is one.
        None if home.join("access.jsonl").is_file() => Ok(home.join("access.jsonl")),
        None => Err(Error::NotRunning(
            "no proxy is running to ask where its access log is, and there is no $QCC_HOME/access.jsonl: give --file PATH"
                .into(),
        )),
    }
}

pub fn run(home: &Path, args: &LogsArgs) -> Result<()> {
    let path = log_path(home, args)?;
    let files = requestlog::files(&path);
    if files.is_empty() {
        return Err(Error::BadFile { path, problem: "no such file".into() });
    }
    let page = requestlog::search(&files, &args.filter, None, args.n.max(1), None)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page.entries).unwrap_or_default());
        return Ok(());
    }
    if page.entries.is_empty() {
        println!("no request matches (searched {} of {})", size(page.scanned_bytes), path.display());
        return Ok(());
    }
    println!(
        "{:<19} {:>7} {:<6} {:<24} {:<14} {:>7} {:>9}  TRIED",
        "TIME", "STATUS", "METHOD", "PATH", "KEY", "MS", "TOKENS"
    );
    // Entries from several clusters (routes, a fallback): each says which answered.
    let cluster_of = |e: &Value| e.get("cluster").and_then(Value::as_str).map(str::to_string);
    let several = page.entries.iter().filter_map(cluster_of).collect::<std::collections::BTreeSet<_>>().len() > 1;
    for e in &page.entries {
        let s = |k: &str| crate::mask::clean(e.get(k).and_then(Value::as_str).unwrap_or("-")).into_owned();
        let mut tried: Vec<String> = e
            .get("tried")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| {
                let name = t.get("name").and_then(Value::as_str).unwrap_or("?");
                let out = t.get("outcome").and_then(Value::as_str).unwrap_or("?");
                // Each attempt clipped, none left out: the column is the line's last.
                crate::mask::clip(&crate::mask::clean(&format!("{name} {out}")), 48).to_string()
            })
            .collect();
        if let (true, Some(c), Some(last)) = (several, cluster_of(e), tried.last_mut()) {
            last.insert_str(0, &format!("{}/", crate::mask::clean(&c))); // the one that answered
        }
        let tokens = e
            .get("tokens")
            .filter(|t| !t.is_null())
            .map(|t| {
                let n = |k: &str| t.get(k).and_then(Value::as_u64).unwrap_or(0);
                n("input")
                    .saturating_add(n("output"))
                    .saturating_add(n("cache_creation"))
                    .saturating_add(n("cache_read"))
                    .to_string()
            })
            .unwrap_or_else(|| "-".into());
        let time = s("time");
        println!(
            "{:<19} {:>7} {:<6} {:<24} {:<14} {:>7} {:>9}  {}",
            time.get(..19).unwrap_or(&time),
            s("status"),
            s("method"),
            crate::mask::clip(&s("path"), 24),
            crate::mask::clip(&s("key"), 14),
            e.get("duration_ms").and_then(Value::as_u64).map_or("-".into(), |m| m.to_string()),
            tokens,
            if tried.is_empty() { "-".to_string() } else { tried.join(" → ") },
        );
        // Why endpoints ahead of the one that served were passed over.
        let skipped: Vec<String> = e
            .get("skipped")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|k| {
                let name = k.get("name").and_then(Value::as_str).unwrap_or("?");
                let why = k.get("why").and_then(Value::as_str).unwrap_or("?");
                crate::mask::clean(&format!("{name} ({why})")).into_owned()
            })
            .collect();
        if !skipped.is_empty() {
            println!("{:>19} skipped: {}", "", skipped.join(", "));
        }
        if let Some(file) = e.get("body_log").and_then(Value::as_str) {
            println!("{:>19} bodies: {}", "", crate::mask::clean(file));
        }
    }
    if page.next.is_some() {
        println!("(the {} newest that match; -n N for more)", page.entries.len());
    }
    Ok(())
}

fn size(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{b} bytes")
    }
}
