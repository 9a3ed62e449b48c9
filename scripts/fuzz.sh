#!/usr/bin/env bash
# Bounded fuzzing of the HTTP parsers (request head, response head, chunked decoder) with
# generated inputs: mutations of valid messages, each checked for panics and for whole-vs-split
# agreement. Stops by itself after SECS seconds (default 60). A failure prints the seed; replay
# it with QCC_FUZZ_SEED=<seed>. Add the input that broke to REGRESSIONS in src/http/fuzz.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
QCC_FUZZ_SECS=$secs cargo test --release --bin qcc http::fuzz::generated_inputs -- --nocapture 2>&1 | grep -E "fuzz:|test result|panicked|seed"
