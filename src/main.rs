//! qcc: the command-line entry point. A thin shell around `run()`.

mod balancer;
mod claude;
mod config;
mod mask;
mod control;
mod error;
mod failure_queue;
mod fsutil;
mod health;
mod http;
mod logging;
mod pidfile;
mod proxy;
mod sdnotify;
mod settings;
mod timefmt;
mod url;

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::SUCCESS
}
