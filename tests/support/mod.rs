//! Shared test helpers: temp state dirs, running the binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop. Holds `home/` ($QCC_HOME)
/// and `cache.json` ($QCC_CONFIG) for one test.
pub struct TempHome {
    pub root: PathBuf,
}

impl TempHome {
    pub fn new() -> TempHome {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "qcc-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("create temp dir");
        TempHome { root }
    }
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("cache.json")
    }
    /// A `qcc` command with QCC_HOME and QCC_CONFIG pointing into this dir.
    pub fn qcc(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qcc"));
        cmd.env("QCC_HOME", self.home())
            .env("QCC_CONFIG", self.config())
            .env("HOME", &self.root)
            .env_remove("QCC_ACCESS_KEY")
            .env_remove("CLAUDE_CONFIG_DIR");
        cmd
    }
    /// Run `qcc args...` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.qcc().args(args).output().expect("run qcc")
    }
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
