//! Logging for `qcc proxy start`: simplelog to `$QCC_HOME/proxy.log` and to stderr
//! (no colours when stderr is not a terminal, so journald stays clean).

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use log::LevelFilter;
use simplelog::{ColorChoice, CombinedLogger, ConfigBuilder, SharedLogger, TermLogger, TerminalMode, WriteLogger};

use crate::error::{Error, Result};

pub fn log_path(home: &Path) -> PathBuf {
    home.join("proxy.log")
}

pub fn init(level: LevelFilter, home: &Path) -> Result<()> {
    crate::store::fsutil::ensure_dir(home).map_err(|e| Error::io(format!("cannot create {}", home.display()), e))?;
    let path = log_path(home);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let mut builder = ConfigBuilder::new();
    // rustls logs every handshake at debug; keep our own debug lines readable.
    builder.add_filter_ignore_str("rustls").add_filter_ignore_str("mio");
    let _ = builder.set_time_offset_to_local();
    let config = builder.build();
    let color = if std::io::stderr().is_terminal() { ColorChoice::Auto } else { ColorChoice::Never };
    let loggers: Vec<Box<dyn SharedLogger>> = vec![
        TermLogger::new(level, config.clone(), TerminalMode::Stderr, color),
        WriteLogger::new(level, config, file),
    ];
    CombinedLogger::init(loggers).map_err(|e| Error::Failed(format!("cannot start logging: {e}")))
}
