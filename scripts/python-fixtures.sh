#!/usr/bin/env bash
# Makes tests/fixtures/python/<version>/ with the real Python qcc packages, then checks that a
# file qcc rewrote still loads in them. Needs python3 and PyPI; the tests never need either.
#
#   scripts/python-fixtures.sh            # regenerate the committed fixtures, then round-trip
#   scripts/python-fixtures.sh --check    # round-trip only (the committed fixtures stay as they are)
#
# Versions: QCC_PY_VERSIONS (default "0.4.1 0.6.1", the release users upgrade from and the newest).
set -euo pipefail
cd "$(dirname "$0")/.."
versions=${QCC_PY_VERSIONS:-"0.4.1 0.6.1"}
check_only=false
[ "${1:-}" = "--check" ] && check_only=true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
qcc=$PWD/target/release/qcc

for v in $versions; do
    python3 -m venv "$work/venv-$v"
    "$work/venv-$v/bin/pip" install --quiet --disable-pip-version-check "qcc==$v"
    py="$work/venv-$v/bin/python"
    out=tests/fixtures/python/$v
    if ! $check_only; then
        rm -rf "$out"
        "$py" scripts/python_fixtures.py make "$out"
        echo "made $out"
    fi
    # Round trip: qcc rewrites a copy of each cache.json; the Python package must still load it.
    for home in "$out"/*/home; do
        copy=$work/rt-$v-$(basename "$(dirname "$home")")
        cp -r "$home" "$copy"
        export QCC_CONFIG=$copy/.fastcc/cache.json QCC_HOME=$copy/.qcc
        first=$("$qcc" config list --json | "$py" -c 'import json,sys; p=json.load(sys.stdin)["profiles"]; print(p[0]["name"])')
        "$qcc" endpoint add "$first" --url https://added.example.com --key sk-ant-roundtrip-0000 --priority 9 >/dev/null
        "$qcc" default "$first" >/dev/null
        "$py" scripts/python_fixtures.py load "$copy"
    done
    # Sync: qcc pulls the Python package's cloud-folder file, pushes it back in plain text, and
    # the package's own cloud-folder backend pulls what qcc pushed.
    copy=$work/sync-$v
    cp -r "$out/cloud/home" "$copy"
    export QCC_CONFIG=$copy/.fastcc/cache.json QCC_HOME=$copy/.qcc HOME=$copy
    "$qcc" sync pull --dir "$copy/Dropbox/FastCC" >/dev/null
    "$qcc" endpoint add team --url https://added.example.com --key sk-ant-roundtrip-0000 --priority 9 >/dev/null
    "$qcc" sync push --plaintext --dir "$copy/Dropbox/FastCC" >/dev/null
    "$py" scripts/python_fixtures.py load-cloud "$copy/Dropbox/FastCC"
done
echo "ok"
