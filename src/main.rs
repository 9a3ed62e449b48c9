//! qcc: the command-line entry point. A thin shell around `run()`.

mod balancer;
mod config;
mod error;
mod failure_queue;
mod health;
mod http;
mod proxy;
mod settings;
mod timefmt;
mod url;

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::SUCCESS
}
