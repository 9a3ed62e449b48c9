//! The one error type of the binary: each variant carries its context and maps to an exit code.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// Bad command line: unknown command/flag, missing value, leftover argument. Exit 2.
    Usage(String),
    /// A file the user owns (config, state) cannot be read or parsed. Exit 2.
    /// Display: "<path>: <problem>".
    BadFile { path: PathBuf, problem: String },
    /// A value the user gave is invalid (bad URL, unknown cluster, unknown endpoint id). Exit 2.
    Invalid(String),
    /// An I/O failure while doing something; `context` says what. Exit 1.
    Io { context: String, source: io::Error },
    /// The proxy is not running (status/stop/queue commands). Exit 3.
    NotRunning(String),
    /// Anything else that stops the command. Exit 1.
    Failed(String),
    /// The command already said why on stderr; exit with this code and print nothing more.
    Silent(u8),
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::BadFile { .. } | Error::Invalid(_) => 2,
            Error::NotRunning(_) => 3,
            Error::Io { .. } | Error::Failed(_) => 1,
            Error::Silent(code) => *code,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::Invalid(msg) | Error::NotRunning(msg) | Error::Failed(msg) => f.write_str(msg),
            Error::BadFile { path, problem } => write!(f, "{}: {problem}", path.display()),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Silent(_) => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
