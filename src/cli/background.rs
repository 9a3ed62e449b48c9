//! A proxy in the background: `qcc proxy start -d`, and the proxy that `qcc env` and the
//! launcher start when none serves their cluster. The CLI starts `qcc proxy start` again as a
//! new process in its own session (no terminal signals reach it), reads its output until the
//! `ANTHROPIC_BASE_URL=` line says it listens (the pid file is written by then), and returns;
//! the proxy then leaves the terminal (`Settings::detached`) and logs to `$QCC_HOME/proxy.log`.
//! If it stops before listening, what it said goes to the user and its exit code is ours.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::proxy_start::{ProxyStartArgs, DETACHED_ENV};
use crate::error::{Error, Result};
use crate::store::pidfile::{self, PidInfo};

/// How long a starting proxy may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Start `args` (validated first, so bad input is said at once) as a background proxy; the lines
/// it printed and where it runs.
pub fn start(home: &Path, args: &ProxyStartArgs) -> Result<(Vec<String>, PidInfo)> {
    if let Some(info) = pidfile::running(home)? {
        let cluster = info.cluster.as_deref().map(|c| format!(", cluster '{c}'")).unwrap_or_default();
        return Err(Error::Failed(format!(
            "qcc proxy is already running for {} (pid {}, {}{cluster}); stop it with `qcc proxy stop`",
            home.display(),
            info.pid,
            info.base_url()
        )));
    }
    super::proxy_start::settings(args.clone())?; // bad input: one line now, nothing started
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find the qcc binary", e))?;
    let mut cmd = Command::new(exe);
    cmd.args(args.foreground_argv())
        .env(DETACHED_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::io("cannot start the proxy", e))?;
    let (Some(out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::Failed("cannot read the starting proxy's output".into()));
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(std::result::Result::ok) {
            let ready = line.starts_with("ANTHROPIC_BASE_URL=");
            if tx.send(Some(line)).is_err() || ready {
                return;
            }
        }
        let _ = tx.send(None); // closed before listening
    });
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(line)) => {
                let ready = line.starts_with("ANTHROPIC_BASE_URL=");
                lines.push(line);
                if ready {
                    break;
                }
            }
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let mut said = String::new();
                let _ = err.read_to_string(&mut said);
                let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(1);
                eprint!("{said}");
                return Err(Error::Silent(u8::try_from(code).unwrap_or(1).max(1)));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                return Err(Error::Failed(format!(
                    "the proxy did not start listening within {}s; see {}",
                    START_TIMEOUT.as_secs(),
                    crate::logging::log_path(home).display()
                )));
            }
        }
    }
    // It listens and has written its pid file (before the line); its stderr is ours no more.
    drop(err);
    let info =
        pidfile::running(home)?.ok_or_else(|| Error::Failed("the proxy started but wrote no pid file".into()))?;
    Ok((lines, info))
}

/// The proxy of this state dir serving `cluster`, and the base URL for it: the running one, or
/// one started now in the background (on `port`, default 7860). A proxy running for another
/// cluster serves this one too, at its own path (`BASE/c/NAME`: one proxy for every terminal);
/// only a cluster whose name cannot be a path is refused, saying which proxy runs.
pub fn ensure(home: &Path, cluster: &str, port: Option<u16>) -> Result<(PidInfo, bool, String)> {
    if let Some(info) = pidfile::running(home)? {
        let base = info.base_url();
        return match info.cluster.as_deref() {
            Some(c) if c == cluster => Ok((info, false, base)),
            _ if crate::store::names::check_name(cluster).is_ok() => {
                let named = named_url(&base, cluster);
                Ok((info, false, named))
            }
            other => Err(Error::Failed(format!(
                "a qcc proxy for {} already runs here (pid {}, {}); stop it with `qcc proxy stop` \
                 (one proxy per QCC_HOME)",
                other.map_or("another cluster".to_string(), |c| format!("cluster '{c}'")),
                info.pid,
                info.base_url()
            ))),
        };
    }
    let remembered = crate::store::proxy_flags::of(home, cluster);
    let (_, info) = start(home, &ProxyStartArgs::for_cluster(cluster, port, &remembered))?;
    let base = info.base_url();
    Ok((info, true, base))
}

/// The URL at which a proxy at `base` serves `cluster` whatever it was started for.
pub fn named_url(base: &str, cluster: &str) -> String {
    format!("{base}/c/{cluster}")
}

/// `qcc proxy restart`: the running proxy stopped (it drains first) and started again in the
/// background on the same address, the way it was started (for its cluster, or by the profile
/// priorities, as they are now), with the flags its cluster was last started with. What it
/// would start is checked first: a config that cannot start is refused with the reason, and the
/// running proxy goes on serving.
pub fn restart(home: &Path) -> Result<()> {
    let Some(info) = pidfile::running(home)? else {
        return Err(Error::NotRunning(
            "no qcc proxy is running here to restart (start one: qcc proxy start -d)".into(),
        ));
    };
    let Some(cluster) = info.cluster.clone() else {
        return Err(Error::Failed("the running proxy does not say which cluster it serves; stop and start it".into()));
    };
    let remembered = crate::store::proxy_flags::of(home, &cluster);
    let args = match info.by_priority {
        true => ProxyStartArgs::for_priorities(Some(info.port), &remembered),
        false => ProxyStartArgs::for_cluster(&cluster, Some(info.port), &remembered),
    };
    if let Err(e) = super::proxy_start::settings(args.clone()) {
        return Err(Error::Failed(format!("not restarted (the running proxy, pid {}, goes on): {e}", info.pid)));
    }
    super::control::proxy_stop(home, std::time::Duration::from_secs(40))?;
    let (lines, _) = start(home, &args)?;
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
