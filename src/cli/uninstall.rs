//! `qcc uninstall [--yes]`, as the Python qcc's: this machine's qcc config is removed after a
//! confirmation — the config file (`$QCC_CONFIG`, `~/.fastcc/cache.json`) and `$QCC_HOME`
//! (`~/.qcc`: client keys, usage, the request history, the access key, state files). The synced
//! folder and the binary stay; so does an installed service's unit (`qcc service uninstall`
//! first). Refused while a proxy of this `$QCC_HOME` runs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub fn run(home: &Path, yes: bool) -> Result<()> {
    if let Some(info) = crate::store::pidfile::running(home)? {
        return Err(Error::Failed(format!(
            "a qcc proxy runs from {} (pid {}): stop it first with `qcc proxy stop` (nothing was removed)",
            home.display(),
            info.pid
        )));
    }
    // $QCC_HOME goes whole: never when it is a directory that holds more than qcc's (set to the
    // home directory or the root by mistake).
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let user_home = canon(&crate::store::fsutil::home_dir());
    if home.exists() && (canon(home) == user_home || canon(home).parent().is_none()) {
        return Err(Error::Invalid(format!(
            "QCC_HOME is {}: not a directory of qcc's own; remove what you mean by hand (nothing was removed)",
            home.display()
        )));
    }
    let config = crate::store::fsutil::config_path();
    let gone: Vec<PathBuf> = [config.clone(), home.to_path_buf()].into_iter().filter(|p| p.exists()).collect();
    if gone.is_empty() {
        println!("nothing to remove: neither {} nor {} exists", config.display(), home.display());
        return Ok(());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Failed("refusing to uninstall without --yes (stdin is not a terminal)".into()));
        }
        eprintln!("This removes qcc's config on this machine:");
        for p in &gone {
            eprintln!("  {}", p.display());
        }
        eprintln!("(the synced folder and the qcc binary stay)");
        eprint!("remove them? type yes: ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim() != "yes" {
            return Err(Error::Failed("nothing was removed".into()));
        }
    }
    for p in &gone {
        let removed = if p.is_dir() { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) };
        removed.map_err(|e| Error::io(format!("cannot remove {}", p.display()), e))?;
        println!("removed {}", p.display());
    }
    if crate::cli::service::installed_here() {
        println!("an installed qcc service remains: `qcc service uninstall` removes it");
    }
    println!("the qcc binary stays: {}", std::env::current_exe().map(|e| e.display().to_string()).unwrap_or_default());
    Ok(())
}
