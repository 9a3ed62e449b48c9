#!/usr/bin/env bash
# Translation end to end (run by .ci/run): the real qcc between the official Anthropic SDK and a
# mock OpenAI-compatible upstream that validates every request with the official `openai`
# package's types (tests/translate/harness.py). Installs what it needs into a venv under target/.
# Everything runs on 127.0.0.1 and stops by itself.
#
#   scripts/translate-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/translate-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  }
fi
"$venv/bin/pip" install -q --disable-pip-version-check 'openai>=1.50' 'anthropic>=0.40' pydantic
cargo build -q
timeout 300 "$venv/bin/python" tests/translate/harness.py "$PWD/target/debug/qcc"
