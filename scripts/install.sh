#!/usr/bin/env bash
# Build qcc and install the binary; with --systemd also the hardened service unit.
#
#   scripts/install.sh                 # binary to /usr/local/bin (root) or ~/.local/bin
#   scripts/install.sh --prefix DIR    # binary to DIR/bin
#   sudo scripts/install.sh --systemd  # binary + qcc user + /etc/qcc/qcc.env + qcc.service
#   scripts/install.sh --binary FILE|URL   # a prebuilt (static) qcc, no Rust toolchain needed
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=""
systemd=0
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --systemd) systemd=1; shift ;;
    --binary) binary="${2:?--binary needs a file or a URL}"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$prefix" ]; then
  if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
fi
if [ "$systemd" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: --systemd needs root (run with sudo)" >&2
  exit 2
fi
built=target/release/qcc
case "$binary" in
  "")
    command -v cargo >/dev/null || { echo "install.sh: cargo not found; install the Rust toolchain (rustup.rs), or give --binary FILE|URL" >&2; exit 1; }
    cargo build --release --locked ;;
  http://*|https://*)
    command -v curl >/dev/null || { echo "install.sh: curl is needed to download $binary" >&2; exit 1; }
    built=$(mktemp)
    trap 'rm -f "$built"' EXIT
    curl -fsSL --max-time 300 -o "$built" "$binary" || { echo "install.sh: cannot download $binary" >&2; exit 1; } ;;
  *)
    [ -f "$binary" ] || { echo "install.sh: $binary: no such file" >&2; exit 1; }
    built=$binary ;;
esac
"$built" --version >/dev/null 2>&1 || { echo "install.sh: $binary does not run here (not a qcc for this machine?)" >&2; exit 1; }
install -d "$prefix/bin"
install -m 0755 "$built" "$prefix/bin/qcc"
echo "installed $prefix/bin/qcc ($("$prefix/bin/qcc" --version))"

if [ "$systemd" -eq 1 ]; then
  if [ "$prefix/bin/qcc" != /usr/local/bin/qcc ]; then
    install -m 0755 "$built" /usr/local/bin/qcc
  fi
  if ! id qcc >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/qcc --no-create-home --shell /usr/sbin/nologin qcc
  fi
  # The state folder exists before the service first starts: the `sudo -u qcc ... qcc endpoint
  # add` below writes there (systemd's StateDirectory= would make it only at the first start).
  install -d -m 0700 -o qcc -g qcc /var/lib/qcc
  install -d -m 0750 /etc/qcc
  if [ ! -e /etc/qcc/qcc.env ]; then
    umask 077
    cat > /etc/qcc/qcc.env <<'ENV'
# qcc service settings (read by qcc.service)
# Listening beyond loopback needs an access key (or client keys: qcc key add NAME); clients
# send it as Authorization: Bearer (ANTHROPIC_AUTH_TOKEN) or x-api-key.
#QCC_ACCESS_KEY=change-me
QCC_ARGS=--host 127.0.0.1 --port 7860
ENV
  fi
  install -m 0644 scripts/qcc.service /etc/systemd/system/qcc.service
  install -m 0644 scripts/qcc.socket /etc/systemd/system/qcc.socket
  systemctl daemon-reload || true
  cat <<MSG
installed /etc/systemd/system/qcc.service
next:
  sudo -u qcc env QCC_HOME=/var/lib/qcc QCC_CONFIG=/var/lib/qcc/cache.json \\
      qcc endpoint add main --url https://api.example.com --key sk-...
  edit /etc/qcc/qcc.env: QCC_ARGS=--cluster main --host 127.0.0.1 --port 7860
  sudo systemctl enable --now qcc && systemctl status qcc
  optional, restarts that refuse no connection: sudo systemctl enable --now qcc.socket
MSG
fi
