//! Reading arguments with pico-args the same way for every command: a usage error for a
//! missing value, a leftover argument or an unknown option; secrets from a flag, stdin or a file;
//! model maps, probe models and a client key's limits.

use std::path::PathBuf;

use pico_args::Arguments;

use crate::error::{Error, Result};

pub(super) fn usage(e: pico_args::Error) -> Error {
    Error::Usage(match e {
        pico_args::Error::OptionWithoutAValue(k) => format!("option {k} needs a value"),
        pico_args::Error::Utf8ArgumentParsingFailed { value, cause } => {
            format!("invalid value '{value}': {cause}")
        }
        pico_args::Error::ArgumentParsingFailed { cause } => format!("invalid value: {cause}"),
        other => other.to_string(),
    })
}

pub(super) fn positional(args: &mut Arguments, what: &str, topic: &str) -> Result<String> {
    match args.opt_free_from_str::<String>().map_err(usage)? {
        Some(v) if !v.starts_with('-') => Ok(v),
        Some(v) => {
            let hint = super::completions::did_you_mean(&v, None, Some(topic));
            Err(Error::Usage(format!("unknown option '{v}' for `qcc {topic}`{hint}")))
        }
        None => Err(Error::Usage(format!("`qcc {topic}` needs {what}"))),
    }
}

pub(super) fn finish(args: Arguments, topic: &str) -> Result<()> {
    let rest = args.finish();
    match rest.first() {
        None => Ok(()),
        Some(a) => {
            let a = a.to_string_lossy();
            Err(Error::Usage(if a.starts_with('-') {
                let hint = super::completions::did_you_mean(&a, None, Some(topic));
                format!("unknown option '{a}' for `qcc {topic}`{hint}")
            } else {
                format!("unexpected argument '{a}' for `qcc {topic}`")
            }))
        }
    }
}

/// A secret given as `--key KEY`, `--key -` (first line of stdin) or `--key-file PATH` (first
/// line of the file): exactly one of them. The file and stdin forms keep it out of `ps`.
pub(super) fn secret_arg(args: &mut Arguments, flag: &'static str, file_flag: &'static str) -> Result<String> {
    opt_secret_arg(args, flag, file_flag)?
        .ok_or_else(|| Error::Usage(format!("{flag} KEY, {flag} - or {file_flag} PATH is required")))
}

/// `secret_arg` when the secret is optional (`endpoint set`).
pub(super) fn opt_secret_arg(
    args: &mut Arguments,
    flag: &'static str,
    file_flag: &'static str,
) -> Result<Option<String>> {
    let value: Option<String> = args.opt_value_from_str(flag).map_err(usage)?;
    let file: Option<PathBuf> =
        args.opt_value_from_os_str(file_flag, |s| Ok::<_, String>(PathBuf::from(s))).map_err(usage)?;
    let text = match (value, file) {
        (Some(_), Some(_)) => return Err(Error::Usage(format!("give {flag} or {file_flag}, not both"))),
        (None, None) => return Ok(None),
        (Some(v), None) if v == "-" => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| Error::io(format!("{flag} -: cannot read stdin"), e))?;
            line
        }
        (Some(v), None) => v,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| Error::BadFile { path: path.clone(), problem: e.to_string() })?
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    };
    let key = text.trim().to_string();
    if key.is_empty() {
        return Err(Error::Invalid(format!("{flag}: the key is empty")));
    }
    Ok(Some(key))
}

/// `--model-map PATTERN=MODEL` (repeatable); `None` when not given, `Some(empty)` for
/// `--model-map ''` (clear).
pub(super) fn model_map_arg(args: &mut Arguments) -> Result<Option<Vec<crate::store::models::ModelRule>>> {
    let given: Vec<String> = args.values_from_str("--model-map").map_err(usage)?;
    if given.is_empty() {
        return Ok(None);
    }
    if given.iter().all(|g| g.trim().is_empty()) {
        return Ok(Some(Vec::new()));
    }
    given
        .iter()
        .map(|g| crate::store::models::ModelRule::parse(g).map_err(Error::Invalid))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// `--probe-model MODEL` (`''` clears it on `endpoint set`).
pub(super) fn probe_model_arg(args: &mut Arguments) -> Result<Option<String>> {
    let m: Option<String> = args.opt_value_from_str("--probe-model").map_err(usage)?;
    if let Some(m) = m.as_deref().filter(|m| !m.is_empty()) {
        crate::store::models::check_probe_model(m).map_err(Error::Invalid)?;
    }
    Ok(m)
}

/// The values given for `flags`, looked up by their field names (`--max-tokens-field` is field
/// `max_tokens_field`): what the `from_fields` readers the dashboard shares take.
struct Given(Vec<(&'static str, String)>);

impl Given {
    fn read(args: &mut Arguments, flags: &[&'static str]) -> Result<Given> {
        let mut given = Vec::new();
        for &flag in flags {
            if let Some(v) = args.opt_value_from_str::<_, String>(flag).map_err(usage)? {
                given.push((flag, v));
            }
        }
        Ok(Given(given))
    }

    fn field(&self, field: &str) -> Option<String> {
        let named = |flag: &str| flag[2..].bytes().map(|b| if b == b'-' { b'_' } else { b }).eq(field.bytes());
        self.0.iter().find(|(flag, _)| named(flag)).map(|(_, v)| v.clone())
    }
}

/// `--format anthropic|openai`, `--max-tokens-field F`, `--reasoning-effort on|off`.
pub(super) fn format_arg(args: &mut Arguments) -> Result<crate::store::cluster::FormatChange> {
    let given = Given::read(args, &["--format", "--max-tokens-field", "--reasoning-effort"])?;
    crate::store::cluster::FormatChange::from_fields(|f| given.field(f)).map_err(Error::Invalid)
}

/// `--rpm N|none`, `--tpm N|none`, `--concurrent N|none`.
pub(super) fn caps_arg(args: &mut Arguments) -> Result<crate::store::cluster::CapsChange> {
    let given = Given::read(args, &["--rpm", "--tpm", "--concurrent"])?;
    crate::store::cluster::CapsChange::from_fields(|f| given.field(f)).map_err(Error::Invalid)
}

/// `--drop-field F` and `--drop-beta B` (repeatable), `--adaptive-thinking enabled|drop`,
/// `--drop-effort`, `--effort-to FIELD`; on `endpoint set` also `--no-rules` (the hand-written ones cleared first) and
/// `--forget-rules` (what the proxy learned from the endpoint's refusals cleared).
pub(super) fn rules_arg(args: &mut Arguments, set: bool) -> Result<crate::store::rules::RulesChange> {
    use crate::store::rules;
    let drop_fields: Vec<String> = args.values_from_str("--drop-field").map_err(usage)?;
    let drop_betas: Vec<String> = args.values_from_str("--drop-beta").map_err(usage)?;
    for f in &drop_fields {
        rules::check_field(f).map_err(|e| Error::Invalid(format!("--drop-field: {e}")))?;
    }
    for b in &drop_betas {
        rules::check_beta(b).map_err(|e| Error::Invalid(format!("--drop-beta: {e}")))?;
    }
    let adaptive_thinking = match args.opt_value_from_str::<_, String>("--adaptive-thinking").map_err(usage)? {
        Some(t) => {
            Some(rules::parse_adaptive_thinking(&t).map_err(|e| Error::Invalid(format!("--adaptive-thinking: {e}")))?)
        }
        None => None,
    };
    let effort_to: Option<String> = args.opt_value_from_str("--effort-to").map_err(usage)?;
    if let Some(f) = &effort_to {
        rules::check_field(f).map_err(|e| Error::Invalid(format!("--effort-to: {e}")))?;
    }
    let drop_effort = args.contains("--drop-effort");
    let add = rules::Rules { drop_fields, drop_betas, adaptive_thinking, drop_effort, effort_to };
    let (clear, forget) = match set {
        true => (args.contains("--no-rules"), args.contains("--forget-rules")),
        false => (false, false),
    };
    Ok(rules::RulesChange { clear, add, forget })
}

/// The limits and settings `qcc key add|set` take. `none` removes a limit, an expiry or a
/// cluster; `--admin`/`--no-admin` (the latter for `set`) grant or take the admin surface.
pub(super) fn key_change(args: &mut Arguments, set: bool) -> Result<crate::store::keys::KeyChange> {
    use crate::store::keys::KeyChange;
    const FLAGS: [&str; KeyChange::FIELDS.len()] =
        ["--daily-tokens", "--daily-usd", "--rpm", "--concurrent", "--expires", "--cluster"];
    let flag = |field: &str| format!("--{}", field.replace('_', "-"));
    debug_assert!(FLAGS.iter().zip(KeyChange::FIELDS).all(|(f, n)| *f == flag(n)));
    let given = Given::read(args, &FLAGS)?;
    let get = |field: &str| given.field(field);
    let mut c = KeyChange::from_fields(get, flag)?;
    if args.contains("--admin") {
        c.admin = Some(true);
    }
    if set && args.contains("--no-admin") {
        c.admin = Some(false);
    }
    Ok(c)
}
