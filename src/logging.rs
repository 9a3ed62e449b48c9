//! Logging for `qcc proxy start`: simplelog formats each line on the thread that logs it, and a
//! writer thread appends it to `$QCC_HOME/proxy.log` and to stderr, so the event loop never
//! waits on a disk or a slow journald. `reopen()` (SIGHUP) makes the writer open the file at the
//! path again, after logrotate moved the old one. On a terminal, stderr keeps colours and is
//! written directly (a person is watching; a terminal takes lines at once).

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::Duration;

use log::LevelFilter;
use simplelog::{ColorChoice, CombinedLogger, ConfigBuilder, SharedLogger, TermLogger, TerminalMode, WriteLogger};

use crate::error::{Error, Result};

/// Lines waiting for the writer, at most; past that a line is dropped and counted (a stalled
/// disk loses log lines, never the loop's time).
const QUEUE: usize = 4096;

enum Msg {
    Line(Sink, Vec<u8>),
    Reopen,
    Flush(SyncSender<()>),
}

#[derive(Clone, Copy)]
enum Sink {
    File,
    Stderr,
}

static WRITER: OnceLock<SyncSender<Msg>> = OnceLock::new();
static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn log_path(home: &Path) -> PathBuf {
    home.join("proxy.log")
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// Start logging to `proxy.log`, and to stderr unless `to_stderr` is false (a background proxy).
pub fn init(level: LevelFilter, home: &Path, to_stderr: bool) -> Result<()> {
    crate::store::fsutil::ensure_dir(home).map_err(|e| Error::io(format!("cannot create {}", home.display()), e))?;
    let path = log_path(home);
    let file = open(&path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let (tx, rx) = sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("qcc-log".into())
        .spawn(move || write_lines(rx, path, file))
        .map_err(|e| Error::io("starting the log writer", e))?;
    let _ = WRITER.set(tx);
    let mut builder = ConfigBuilder::new();
    // rustls logs every handshake at debug; keep our own debug lines readable.
    builder.add_filter_ignore_str("rustls").add_filter_ignore_str("mio");
    let _ = builder.set_time_offset_to_local();
    let config = builder.build();
    let mut loggers: Vec<Box<dyn SharedLogger>> = Vec::new();
    if to_stderr && std::io::stderr().is_terminal() {
        loggers.push(TermLogger::new(level, config.clone(), TerminalMode::Stderr, ColorChoice::Auto));
    } else if to_stderr {
        loggers.push(WriteLogger::new(level, config.clone(), Queued { sink: Sink::Stderr, line: Vec::new() }));
    }
    loggers.push(WriteLogger::new(level, config, Queued { sink: Sink::File, line: Vec::new() }));
    CombinedLogger::init(loggers).map_err(|e| Error::Failed(format!("cannot start logging: {e}")))
}

/// Open `proxy.log` at its path again (after a rotation moved it).
pub fn reopen() {
    if let Some(w) = WRITER.get() {
        let _ = w.try_send(Msg::Reopen);
    }
}

/// Wait (up to a second) until every line logged so far is written: before the process exits.
pub fn flush() {
    if let Some(w) = WRITER.get() {
        let (tx, rx) = sync_channel(1);
        if w.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Log lines dropped because the writer fell behind.
pub fn dropped() -> u64 {
    DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// simplelog's `Write` target: collects one formatted line, hands it to the writer thread.
struct Queued {
    sink: Sink,
    line: Vec<u8>,
}

impl Write for Queued {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        // simplelog writes a record in pieces and ends it with a newline; it never flushes.
        if self.line.ends_with(b"\n") {
            self.flush()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.line);
        if let Some(w) = WRITER.get() {
            if w.try_send(Msg::Line(self.sink, line)).is_err() {
                DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn write_lines(rx: Receiver<Msg>, path: PathBuf, mut file: File) {
    let mut stderr = std::io::stderr();
    for msg in rx {
        match msg {
            // A full disk loses log lines, nothing else.
            Msg::Line(Sink::File, line) => {
                let _ = file.write_all(&line);
            }
            Msg::Line(Sink::Stderr, line) => {
                let _ = stderr.write_all(&line);
            }
            Msg::Reopen => match open(&path) {
                Ok(f) => file = f,
                Err(e) => {
                    let _ = writeln!(stderr, "qcc: cannot reopen {}: {e}; still writing the old file", path.display());
                }
            },
            Msg::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
