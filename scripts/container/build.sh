#!/usr/bin/env bash
# Build the qcc image (scripts/container/Containerfile) and check it as far as this machine
# allows: containers cannot start here, so the image's files are mounted (podman create +
# podman mount) and run with chroot: `qcc --version`, then a proxy (as the image's user) that
# forwards one request to an upstream named `localhost` (the static glibc resolver reads the
# image's /etc/hosts). Installs podman if needed. Bounded: every wait has a deadline.
#
#   scripts/container/build.sh            # image localhost/qcc:latest; prints its size
#   IMAGE=registry.example/qcc:1 scripts/container/build.sh
#   QCC_BIN=path/to/qcc scripts/container/build.sh   # a static binary already built (no build)
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-localhost/qcc:latest}
TARGET=x86_64-unknown-linux-gnu
need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need curl || ! need python3; then
  apt-get update -qq && apt-get install -y -qq podman curl python3 >/dev/null
fi
# A static binary (glibc, statically linked: there is no musl std here), or the one given.
if [ -n "${QCC_BIN:-}" ]; then
  bin=$QCC_BIN
  if need file && ! file -L "$bin" | grep -Eq 'statically linked|static-pie linked'; then
    echo "build.sh: QCC_BIN=$bin is not a statically linked binary (build it with RUSTFLAGS=\"-C target-feature=+crt-static\")" >&2
    exit 2
  fi
else
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -q --target "$TARGET"
  bin=target/$TARGET/release/qcc
fi
work=$(mktemp -d)
cid=""
upid=""
qpid=""
cleanup() {
  [ -n "$qpid" ] && kill "$qpid" 2>/dev/null || true
  [ -n "$upid" ] && kill "$upid" 2>/dev/null || true
  if [ -n "$cid" ]; then podman umount "$cid" >/dev/null 2>&1 || true; podman rm "$cid" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/rootfs/etc" "$work/data"
strip -o "$work/rootfs/qcc" "$bin"
printf 'root:x:0:0::/:/nonexistent\nqcc:x:10001:10001:qcc:/data:/nonexistent\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\nqcc:x:10001:\n' >"$work/rootfs/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$work/rootfs/etc/hosts"
printf 'hosts: files dns\n' >"$work/rootfs/etc/nsswitch.conf"
cp scripts/container/Containerfile "$work/"
podman build -q -t "$IMAGE" -f "$work/Containerfile" "$work" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "container: $IMAGE, $((size / 1024)) KiB"
[ "$size" -lt $((10 * 1024 * 1024)) ] || { echo "container: the image is over 10 MB" >&2; exit 1; }

# The image's files, run with chroot (a container cannot start on this machine).
cid=$(podman create "$IMAGE")
mnt=$(podman mount "$cid")
chroot "$mnt" /qcc --version
# An upstream on the host, reached as http://localhost:PORT from inside.
up_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$up_port" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"type":"message","content":[{"type":"text","text":"from the upstream"}]}'
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
upid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null -d '{}' "http://127.0.0.1:$up_port/" && break; sleep 0.1; done
key=k-container-check-0123456789
# (the image has no shell and no env: the variables are chroot's own environment)
run() { QCC_HOME=/data QCC_CONFIG=/data/cache.json chroot --userspec=10001:10001 "$mnt" "$@"; }
run /qcc endpoint add c --url "http://localhost:$up_port" --key sk-container-0000 --name up >/dev/null
q_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
QCC_ACCESS_KEY=$key run /qcc proxy start --cluster c --host 127.0.0.1 --port "$q_port" >/dev/null 2>&1 &
qpid=$!
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$q_port/_qcc/status" -H "x-api-key: $key" && break
  sleep 0.1
done
got=$(curl -s --max-time 10 -H "x-api-key: $key" -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$q_port/v1/messages")
case "$got" in
  *"from the upstream"*) echo "container: ok (qcc --version, a proxy as uid 10001 forwarding to localhost:$up_port)" ;;
  *) echo "container: the proxy in the image did not forward: $got" >&2; tail -5 "$mnt/data/proxy.log" >&2 || true; exit 1 ;;
esac
