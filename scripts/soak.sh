#!/usr/bin/env bash
# Bounded soak on loopback: mixed normal and streaming load through qcc plus injected upstream
# faults (5xx, 429, resets, garbage, slow) for N minutes (default 2). Reports requests served,
# errors by kind, RSS and fd count at start and end; exits non-zero if anything leaked or the
# proxy died. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-2}
SOAK_SECS=$((minutes * 60)) cargo test --release --test tests soak::soak -- --ignored --nocapture 2>&1 \
  | grep -E "^soak:|^  |test result|panicked|assert"
