//! `qcc service install|uninstall|status`: the proxy as a per-user service that is simply there
//! when Claude Code starts, with the user's own config, no root. Linux: a systemd *user* socket
//! and service (`qcc.socket` listens on 127.0.0.1:PORT; the first connection starts
//! `qcc.service`, `Type=notify`, which takes the socket). macOS: a LaunchAgent (`RunAtLoad`,
//! `KeepAlive`). With `--dir DIR` the files are only written there (no systemctl, no launchctl,
//! no key). Files are written whole or not at all. On a machine shared with others, a loopback
//! proxy without a key would let any local user spend the keys: the installed service gets its
//! own access key (`$QCC_HOME/access_key`, made once, mode 0600), which `qcc env`, the launcher
//! and `qcc proxy use` pass on. A proxy already on the port is said, with how to hand over.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::store::config::ConfigFile;
use crate::store::fsutil;

/// The launchd label (and the plist's file name without `.plist`).
pub const LABEL: &str = "dev.qcc.proxy";

#[derive(Debug, Clone, Default)]
pub struct InstallArgs {
    pub cluster: Option<String>,
    pub port: Option<u16>,
    pub dir: Option<PathBuf>,
    pub os: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Os {
    Linux,
    Macos,
}

fn os(arg: Option<&str>) -> Result<Os> {
    match arg {
        None if cfg!(target_os = "macos") => Ok(Os::Macos),
        None => Ok(Os::Linux),
        Some("linux") => Ok(Os::Linux),
        Some("macos") => Ok(Os::Macos),
        Some(other) => Err(Error::Usage(format!("--os {other}: linux or macos"))),
    }
}

fn default_dir(os: Os) -> PathBuf {
    match os {
        Os::Linux => std::env::var_os("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map_or_else(|| fsutil::home_dir().join(".config"), PathBuf::from)
            .join("systemd")
            .join("user"),
        Os::Macos => fsutil::home_dir().join("Library").join("LaunchAgents"),
    }
}

/// Whether this machine's per-user service files are in their usual place.
pub fn installed_here() -> bool {
    let Ok(os) = os(None) else { return false };
    files(os).iter().any(|f| default_dir(os).join(f).exists())
}

/// The files of the service, by name.
fn files(os: Os) -> &'static [&'static str] {
    match os {
        Os::Linux => &["qcc.socket", "qcc.service"],
        Os::Macos => &["dev.qcc.proxy.plist"],
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn run(tool: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(tool).args(args).output().map_err(|e| Error::io(format!("cannot run {tool}"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        Err(Error::Failed(format!("`{tool} {}` failed: {}", args.join(" "), said.trim())))
    }
}

fn uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// Make `$QCC_HOME/access_key` once (48 random hex digits after `qcc-`, mode 0600); an existing
/// key, or one in `QCC_ACCESS_KEY`, is kept.
pub fn ensure_access_key(home: &Path) -> Result<bool> {
    if super::control::access_key(home).is_some() {
        return Ok(false);
    }
    let bytes = crate::store::bytes::random::<24>()
        .map_err(|e| Error::Failed(format!("cannot get random bytes for the access key: {e}")))?;
    let key = format!("qcc-{}", crate::store::bytes::hex(&bytes));
    let path = home.join("access_key");
    fsutil::atomic_write(&path, format!("{key}\n").as_bytes())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    Ok(true)
}

/// A value in a systemd unit: double-quoted, with its specifiers and variables escaped.
fn unit_quote(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$");
    format!("\"{escaped}\"")
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// What the service runs, and with which files.
struct Plan {
    exe: PathBuf,
    cluster: String,
    /// The flags the cluster's proxy was last started with (its address is the socket's).
    flags: Vec<String>,
    port: u16,
    home: PathBuf,
    config: PathBuf,
}

impl Plan {
    fn argv(&self) -> Vec<String> {
        let exe = self.exe.to_string_lossy().into_owned();
        vec![
            exe,
            "proxy".into(),
            "start".into(),
            "--cluster".into(),
            self.cluster.clone(),
            "--port".into(),
            self.port.to_string(),
        ]
        .into_iter()
        .chain(self.flags.iter().cloned())
        .collect()
    }

    fn socket_unit(&self) -> String {
        format!(
            "# Written by `qcc service install`; `qcc service uninstall` removes it.\n\
             [Unit]\nDescription=qcc proxy socket (Claude Code through cluster '{c}')\n\n\
             [Socket]\nListenStream=127.0.0.1:{p}\nNoDelay=true\nBacklog=4096\n\n\
             [Install]\nWantedBy=sockets.target\n",
            c = self.cluster,
            p = self.port
        )
    }

    fn service_unit(&self) -> String {
        let exec: Vec<String> = self.argv().iter().map(|a| unit_quote(a)).collect();
        format!(
            "# Written by `qcc service install`; `qcc service uninstall` removes it.\n\
             [Unit]\nDescription=qcc proxy for cluster '{c}' (Claude Code failover)\n\
             Requires=qcc.socket\nAfter=qcc.socket\n\n\
             [Service]\nType=notify\nExecStart={exec}\nExecReload=/bin/kill -HUP $MAINPID\n\
             Environment={home}\nEnvironment={config}\nRestart=on-failure\nNoNewPrivileges=true\n\
             TimeoutStopSec=40\n\n\
             [Install]\nWantedBy=default.target\n",
            c = self.cluster,
            exec = exec.join(" "),
            home = unit_quote(&format!("QCC_HOME={}", self.home.display())),
            config = unit_quote(&format!("QCC_CONFIG={}", self.config.display())),
        )
    }

    fn plist(&self) -> String {
        let args: String = self.argv().iter().map(|a| format!("    <string>{}</string>\n", xml(a))).collect();
        let log = self.home.join("launchd.log");
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
             <!-- Written by `qcc service install`; `qcc service uninstall` removes it. -->\n\
             <plist version=\"1.0\">\n<dict>\n  <key>Label</key>\n  <string>{LABEL}</string>\n\
             \x20 <key>ProgramArguments</key>\n  <array>\n{args}  </array>\n\
             \x20 <key>EnvironmentVariables</key>\n  <dict>\n\
             \x20   <key>QCC_HOME</key>\n    <string>{home}</string>\n\
             \x20   <key>QCC_CONFIG</key>\n    <string>{config}</string>\n  </dict>\n\
             \x20 <key>RunAtLoad</key>\n  <true/>\n  <key>KeepAlive</key>\n  <true/>\n\
             \x20 <key>ProcessType</key>\n  <string>Background</string>\n\
             \x20 <key>StandardOutPath</key>\n  <string>{log}</string>\n\
             \x20 <key>StandardErrorPath</key>\n  <string>{log}</string>\n</dict>\n</plist>\n",
            home = xml(&self.home.to_string_lossy()),
            config = xml(&self.config.to_string_lossy()),
            log = xml(&log.to_string_lossy()),
        )
    }
}

fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// `qcc service install [--cluster C] [--port P] [--dir DIR] [--os linux|macos]`.
pub fn install(home: &Path, a: &InstallArgs) -> Result<()> {
    let os = os(a.os.as_deref())?;
    let cluster = ConfigFile::load_user()?.cluster_meant(a.cluster.as_deref())?;
    let port = a.port.unwrap_or(7860);
    if port == 0 {
        return Err(Error::Usage("--port 0: a service needs a fixed port".into()));
    }
    let live = a.dir.is_none();
    let tool = match os {
        Os::Linux => "systemctl",
        Os::Macos => "launchctl",
    };
    if live && !on_path(tool) {
        return Err(Error::Failed(format!(
            "{tool} not found: this machine cannot run a {} user service (write the files elsewhere with --dir DIR)",
            if os == Os::Linux { "systemd" } else { "launchd" }
        )));
    }
    // A proxy already on the port: the service could not take it. Said, with how to hand over.
    let base = format!("http://127.0.0.1:{port}");
    if super::client::answers(&base) {
        let who = match super::control::serving(home) {
            Some((info, c)) if info.port == port => format!("a qcc proxy for '{c}' (pid {})", info.pid),
            _ => "something".to_string(),
        };
        let hand_over = format!(
            "stop it (`qcc proxy stop`), then `qcc service install --cluster {cluster} --port {port}`; \
             or give the service another --port"
        );
        if live {
            return Err(Error::Invalid(format!(
                "{who} already listens on 127.0.0.1:{port}: the service could not take the port (nothing was \
                 changed): {hand_over}"
            )));
        }
        eprintln!("qcc: note: {who} listens on 127.0.0.1:{port} now; before the service starts there: {hand_over}");
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find the qcc binary", e))?;
    // Started the way this cluster's proxy was last started by hand, on the service's address.
    let remembered = crate::store::proxy_flags::of(home, &cluster);
    let flags = super::proxy_start::ProxyStartArgs::for_cluster(&cluster, Some(port), &remembered)
        .flags_to_keep(&["--host", "--port"]);
    let plan = Plan {
        exe: exe.canonicalize().unwrap_or(exe),
        flags,
        cluster: cluster.clone(),
        port,
        home: absolute(home.to_path_buf()),
        config: absolute(fsutil::config_path()),
    };
    let dir = a.dir.clone().unwrap_or_else(|| default_dir(os));
    let contents: Vec<(&str, String)> = match os {
        Os::Linux => vec![("qcc.socket", plan.socket_unit()), ("qcc.service", plan.service_unit())],
        Os::Macos => vec![("dev.qcc.proxy.plist", plan.plist())],
    };
    for (name, text) in &contents {
        let path = dir.join(name);
        fsutil::atomic_write(&path, text.as_bytes())
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        println!("wrote {}", path.display());
    }
    // With --dir only the files are written: a key made here would lock out every shell that
    // holds the placeholder, for a service that does not run yet.
    if !live {
        return Ok(());
    }
    let made_key = ensure_access_key(&plan.home)?;
    let started = match os {
        Os::Linux => run("systemctl", &["--user", "daemon-reload"])
            .and_then(|_| run("systemctl", &["--user", "enable", "--now", "qcc.socket"]))
            .map(|_| {
                format!(
                    "enabled qcc.socket: the proxy for '{cluster}' starts on the first connection to 127.0.0.1:{port}"
                )
            }),
        Os::Macos => {
            let target = format!("gui/{}", uid());
            let _ = run("launchctl", &["bootout", &format!("{target}/{LABEL}")]);
            let plist = dir.join("dev.qcc.proxy.plist");
            run("launchctl", &["bootstrap", &target, &plist.to_string_lossy()]).map(|_| {
                format!(
                    "loaded {LABEL}: the proxy for '{cluster}' runs on 127.0.0.1:{port} from now on, at every login"
                )
            })
        }
    };
    // A failed install leaves nothing behind: not its files, and not an access key that would turn
    // access control on at the next proxy start, with no word said.
    let said = match started {
        Ok(said) => said,
        Err(e) => {
            for (name, _) in &contents {
                let _ = std::fs::remove_file(dir.join(name));
            }
            if made_key {
                let _ = std::fs::remove_file(plan.home.join("access_key"));
            }
            return Err(Error::Failed(format!("{e} (nothing was installed: the files and the access key are gone)")));
        }
    };
    if made_key {
        // Remembered, so that `service uninstall` takes away what install made.
        let _ = fsutil::atomic_write(&plan.home.join(MADE_KEY_MARK), b"");
        println!(
            "made an access key for the service in {} (qcc env and qcc use pass it on)",
            plan.home.join("access_key").display()
        );
    }
    println!("{said}");
    println!("Claude Code through it: `qcc use {cluster}`, or `eval \"$(qcc env)\"` in a shell");
    Ok(())
}

/// `qcc service uninstall [--dir DIR] [--os ...]`: stopped, disabled, its files removed.
pub fn uninstall(dir: Option<&Path>, os_arg: Option<&str>) -> Result<()> {
    let os = os(os_arg)?;
    let live = dir.is_none();
    let dir = dir.map_or_else(|| default_dir(os), Path::to_path_buf);
    if live {
        match os {
            Os::Linux if on_path("systemctl") => {
                let _ = run("systemctl", &["--user", "disable", "--now", "qcc.socket", "qcc.service"]);
            }
            Os::Macos if on_path("launchctl") => {
                let _ = run("launchctl", &["bootout", &format!("gui/{}/{LABEL}", uid())]);
            }
            _ => {}
        }
    }
    let mut removed = 0;
    for name in files(os) {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed += 1;
                println!("removed {}", path.display());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
    }
    if live && os == Os::Linux && on_path("systemctl") {
        let _ = run("systemctl", &["--user", "daemon-reload"]);
    }
    // The access key install made for the service goes with it (one the user made stays).
    if live {
        let home = crate::store::fsutil::qcc_home();
        if std::fs::remove_file(home.join(MADE_KEY_MARK)).is_ok()
            && std::fs::remove_file(home.join("access_key")).is_ok()
        {
            println!("removed the access key the service install made ({})", home.join("access_key").display());
        }
    }
    if removed == 0 {
        println!("no qcc service was installed in {}", dir.display());
    }
    Ok(())
}

/// Marks an access key that `service install` made (so that `uninstall` removes it, and only it).
const MADE_KEY_MARK: &str = "access_key.made-by-service";

/// Whether the service is installed and active: (installed, active, what to say).
pub fn state(os_arg: Option<&str>) -> Result<(bool, bool, String)> {
    let os = os(os_arg)?;
    let dir = default_dir(os);
    let installed = files(os).iter().all(|f| dir.join(f).is_file());
    if !installed {
        return Ok((false, false, format!("not installed (no unit files in {})", dir.display())));
    }
    let (active, how) = match os {
        Os::Linux if on_path("systemctl") => {
            let socket = run("systemctl", &["--user", "is-active", "qcc.socket"]).map(|s| s.trim().to_string());
            let service = run("systemctl", &["--user", "is-active", "qcc.service"]).map(|s| s.trim().to_string());
            let said = |r: &Result<String>| r.as_ref().map_or("inactive".to_string(), Clone::clone);
            (socket.is_ok(), format!("qcc.socket {}, qcc.service {}", said(&socket), said(&service)))
        }
        Os::Macos if on_path("launchctl") => {
            let loaded = run("launchctl", &["print", &format!("gui/{}/{LABEL}", uid())]).is_ok();
            (loaded, if loaded { format!("{LABEL} loaded") } else { format!("{LABEL} not loaded") })
        }
        _ => (false, "the service manager is not on this machine".to_string()),
    };
    Ok((true, active, format!("installed in {}; {how}", dir.display())))
}

/// `qcc service status`.
pub fn status(os_arg: Option<&str>) -> Result<()> {
    let (installed, active, said) = state(os_arg)?;
    println!("qcc service: {said}");
    if !installed {
        println!("install it with: qcc service install --cluster CLUSTER");
        return Err(Error::Silent(1));
    }
    if !active {
        return Err(Error::Silent(1));
    }
    Ok(())
}
