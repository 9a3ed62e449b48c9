//! `qcc completions bash|zsh|fish`: shell completion scripts generated from one table of the
//! commands and their flags.

use crate::error::{Error, Result};

/// Every command (`group sub` or a single word) and its flags.
const COMMANDS: &[(&str, &[&str])] = &[
    ("init", &[]),
    ("add", &["--url", "--key", "--key-file", "--description"]),
    ("list", &["--json"]),
    ("use", &["--no-launch", "--dry-run", "--port", "--direct"]),
    ("env", &["--cluster", "--port", "--shell"]),
    ("doctor", &["--json"]),
    ("service install", &["--cluster", "--port", "--dir", "--os"]),
    ("service uninstall", &["--dir", "--os"]),
    ("service status", &["--os"]),
    ("cluster set", &["--retry-on", "--strategy", "--fallback", "--no-fallback"]),
    ("route add", &["--model", "--when", "--to"]),
    ("route list", &["--json"]),
    ("route remove", &[]),
    ("cluster show", &["--json"]),
    ("default", &[]),
    ("remove", &["--yes", "--force"]),
    ("uninstall", &["--yes"]),
    ("presets", &["--json"]),
    ("dashboard", &["--open"]),
    ("statusline", &["--install", "--uninstall"]),
    ("status", &["--json"]),
    ("usage", &["--json", "--days", "--by"]),
    (
        "logs",
        &[
            "--endpoint",
            "--key",
            "--status",
            "--session",
            "--model",
            "--since",
            "--until",
            "--cluster",
            "-n",
            "--json",
            "--file",
        ],
    ),
    ("key add", &["--daily-tokens", "--daily-usd", "--rpm", "--concurrent", "--expires", "--cluster", "--admin"]),
    (
        "key set",
        &["--daily-tokens", "--daily-usd", "--rpm", "--concurrent", "--expires", "--cluster", "--admin", "--no-admin"],
    ),
    ("key list", &["--json"]),
    ("priority set", &[]),
    ("priority list", &["--json"]),
    ("priority switch", &[]),
    ("priority history", &["-n", "--json"]),
    (
        "priority policy",
        &[
            "--auto-failover",
            "--no-auto-failover",
            "--auto-recovery",
            "--no-auto-recovery",
            "--failure-threshold",
            "--cooldown",
        ],
    ),
    ("sync push", &["--dir", "--passphrase-file", "--plaintext"]),
    ("sync pull", &["--dir", "--passphrase-file", "--theirs", "--ours", "--plaintext", "--admin-keys"]),
    ("sync status", &["--dir", "--passphrase-file", "--json"]),
    ("key revoke", &[]),
    ("completions", &[]),
    ("config list", &["--json"]),
    ("config set", &[]),
    (
        "endpoint add",
        &[
            "--preset",
            "--url",
            "--key",
            "--key-file",
            "--priority",
            "--weight",
            "--timeout",
            "--max-failures",
            "--ca-file",
            "--name",
            "--model-map",
            "--probe-model",
            "--format",
            "--max-tokens-field",
            "--reasoning-effort",
            "--rpm",
            "--tpm",
            "--concurrent",
            "--drop-field",
            "--drop-beta",
            "--adaptive-thinking",
            "--drop-effort",
            "--effort-to",
            "--pass-through",
        ],
    ),
    ("endpoint list", &["--json"]),
    ("endpoint remove", &[]),
    ("endpoint enable", &[]),
    ("endpoint disable", &[]),
    (
        "endpoint set",
        &[
            "--url",
            "--key",
            "--key-file",
            "--priority",
            "--weight",
            "--timeout",
            "--max-failures",
            "--name",
            "--model-map",
            "--probe-model",
            "--format",
            "--max-tokens-field",
            "--reasoning-effort",
            "--rpm",
            "--tpm",
            "--concurrent",
            "--drop-field",
            "--drop-beta",
            "--adaptive-thinking",
            "--drop-effort",
            "--effort-to",
            "--no-rules",
            "--forget-rules",
        ],
    ),
    ("proxy start", &[]), // its flags: `proxy_start::FLAGS`
    ("proxy status", &["--json"]),
    ("proxy stop", &["--timeout"]),
    ("proxy reload", &[]),
    ("proxy restart", &[]),
    ("proxy unuse", &[]),
    ("proxy logs", &["-n", "-f"]),
    ("proxy use", &["--host", "--port"]),
    ("health status", &["--json"]),
    ("health test", &["--json", "--probe-model"]),
    ("health check", &["--json"]),
    ("health metrics", &["--json"]),
    ("health history", &["-n", "--json"]),
    ("health config", &["--json"]),
    ("queue status", &["--json"]),
    ("queue list", &["--json"]),
    ("queue clear", &[]),
    ("queue retry", &[]),
    ("queue retry-all", &[]),
];

/// A command's flags: the table above, or for `proxy start` its own table.
fn flags(cmd: &str, listed: &[&'static str]) -> Vec<&'static str> {
    if cmd == "proxy start" {
        super::proxy_start::FLAGS.iter().map(|f| f.name).collect()
    } else {
        listed.to_vec()
    }
}

/// " (did you mean `X`?)" when `word` is one or two edits from a command of the table (`group`:
/// the word is a subcommand of it; `None`: a top-level command) or, for a flag, from a flag of
/// command `topic`; empty otherwise. What `qcc wrok` and `qcc key add --rmp` are told.
pub fn did_you_mean(word: &str, group: Option<&str>, topic: Option<&str>) -> String {
    let candidates: Vec<&str> = match (topic, group) {
        (Some(t), _) => COMMANDS.iter().find(|(c, _)| *c == t).map(|(c, l)| flags(c, l)).unwrap_or_default(),
        (None, Some(g)) => subs(g),
        (None, None) => tops(),
    };
    let best = candidates.into_iter().map(|c| (distance(word, c), c)).filter(|(d, _)| *d <= 2).min();
    match best {
        Some((_, c)) if word.len() > 1 => match group {
            Some(g) if topic.is_none() => format!(" (did you mean `qcc {g} {c}`?)"),
            _ if topic.is_some() => format!(" (did you mean {c}?)"),
            _ => format!(" (did you mean `qcc {c}`?)"),
        },
        _ => String::new(),
    }
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn tops() -> Vec<&'static str> {
    let mut t: Vec<&str> = COMMANDS.iter().map(|(c, _)| c.split(' ').next().unwrap_or(c)).collect();
    t.dedup();
    t.push("help");
    t
}

fn subs(group: &str) -> Vec<&'static str> {
    COMMANDS.iter().filter_map(|(c, _)| c.strip_prefix(group).and_then(|r| r.strip_prefix(' '))).collect()
}

pub fn print(shell: &str) -> Result<()> {
    let script = match shell {
        "bash" => bash(),
        "zsh" => zsh(),
        "fish" => fish(),
        other => return Err(Error::Usage(format!("no completions for '{other}' (bash, zsh or fish)"))),
    };
    print!("{script}");
    Ok(())
}

fn bash() -> String {
    let mut cases = String::new();
    for (cmd, listed) in COMMANDS {
        cases.push_str(&format!("    \"{cmd}\") opts=\"{}\" ;;\n", flags(cmd, listed).join(" ")));
    }
    let mut groups = String::new();
    for g in
        ["config", "endpoint", "proxy", "health", "queue", "service", "cluster", "key", "sync", "priority", "route"]
    {
        groups.push_str(&format!(
            "    {g}) [ \"$COMP_CWORD\" -eq 2 ] && {{ COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return; }} ;;\n",
            subs(g).join(" ")
        ));
    }
    format!(
        r#"# bash completion for qcc (generated by `qcc completions bash`)
_qcc() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "{tops} --help --version --dry-run" -- "$cur")); return
  fi
  case "${{COMP_WORDS[1]}}" in
{groups}  esac
  local cmd="${{COMP_WORDS[1]}}"
  case "$cmd" in config|endpoint|proxy|health|queue|service|cluster|key|sync|priority|route) cmd="$cmd ${{COMP_WORDS[2]}}" ;; esac
  case "$cmd" in
{cases}  esac
  [ "$cmd" = "completions" ] && opts="bash zsh fish"
  COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
}}
complete -F _qcc qcc
"#,
        tops = tops().join(" ")
    )
}

fn zsh() -> String {
    // zsh runs bash completion functions through bashcompinit.
    format!("#compdef qcc\n# zsh completion for qcc (generated by `qcc completions zsh`)\nautoload -U +X bashcompinit && bashcompinit\n{}", bash())
}

fn fish() -> String {
    let mut out = String::from("# fish completion for qcc (generated by `qcc completions fish`)\ncomplete -c qcc -f\n");
    out.push_str(&format!("complete -c qcc -n __fish_use_subcommand -a '{}'\n", tops().join(" ")));
    for g in
        ["config", "endpoint", "proxy", "health", "queue", "service", "cluster", "key", "sync", "priority", "route"]
    {
        out.push_str(&format!("complete -c qcc -n '__fish_seen_subcommand_from {g}' -a '{}'\n", subs(g).join(" ")));
    }
    for (cmd, listed) in COMMANDS {
        let last = cmd.rsplit(' ').next().unwrap_or(cmd);
        for f in flags(cmd, listed).iter().filter(|f| f.starts_with("--")) {
            out.push_str(&format!("complete -c qcc -n '__fish_seen_subcommand_from {last}' -l {}\n", &f[2..]));
        }
    }
    out.push_str("complete -c qcc -n '__fish_seen_subcommand_from completions' -a 'bash zsh fish'\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistakes_get_a_suggestion_and_strangers_none() {
        assert_eq!(did_you_mean("stauts", None, None), " (did you mean `qcc status`?)");
        assert_eq!(did_you_mean("ad", Some("endpoint"), None), " (did you mean `qcc endpoint add`?)");
        assert_eq!(did_you_mean("--rmp", None, Some("key add")), " (did you mean --rpm?)");
        assert_eq!(did_you_mean("--prot", None, Some("proxy start")), " (did you mean --port?)");
        assert_eq!(did_you_mean("frobnicate", None, None), "");
        assert_eq!(distance("ab", "ba"), 1);
    }
}
