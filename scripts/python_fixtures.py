"""Makes qcc's compatibility fixtures with the Python qcc package's own classes.

Run by scripts/python-fixtures.sh inside a throwaway virtualenv that has one qcc version installed:
    python python_fixtures.py make OUT_DIR      # writes OUT_DIR/<scenario>/home/...
    python python_fixtures.py load HOME_DIR     # the Python package loads a file qcc rewrote
    python python_fixtures.py load-cloud FOLDER # its cloud-folder backend pulls a file qcc pushed

Every file under home/ is written by the package itself (ConfigManager, Endpoint, PriorityManager,
its proxy server); this script only decides what to call. Nothing here talks to a real API: base
URLs are example.com names (rewritten by the tests to a mock upstream) or closed loopback ports.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

KEY_A = "sk-ant-api03-fixtureAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa-1111"
KEY_B = "sk-ant-api03-fixtureBBBBbbbbBBBBbbbbBBBBbbbbBBBBbbbb-2222"
KEY_C = "sk-relay-fixtureCCCCccccCCCCcccc-3333"


def fresh_home(out: Path, scenario: str) -> Path:
    home = out / scenario / "home"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    os.environ["HOME"] = str(home)
    os.environ["USER"] = "alice"
    return home


def manager():
    # Imported late: Path.home() is read when the classes are used, and HOME changes per scenario.
    from fastcc.core.config import ConfigManager

    return ConfigManager()


def init_local(cm) -> None:
    """`qcc init`, answering "3" (local storage only) at its prompt."""
    cm._init_and_save_choice("3")


def single_profiles(out: Path) -> None:
    """What `qcc init` + `qcc add` make: single-endpoint profiles, one applied with `qcc use`."""
    fresh_home(out, "single")
    cm = manager()
    init_local(cm)
    cm.settings["auto_sync"] = False
    cm.add_profile("solo", "my main key", "https://api.example.com", KEY_A)
    cm.add_profile("relay", "", "https://relay.example.org/anthropic", KEY_C)
    cm.add_profile("backup", "spare account", "https://backup.example.net", KEY_B)
    cm.set_default_profile("solo")
    # `qcc use relay`: writes ~/.claude/settings.json and sets last_used.
    cm.apply_profile("relay")
    cm._save_local_cache()


def clusters(out: Path) -> None:
    """What `qcc endpoint add CLUSTER` makes from existing profiles, plus endpoints added later."""
    from fastcc.core.config import ConfigProfile
    from fastcc.core.endpoint import Endpoint

    fresh_home(out, "cluster")
    cm = manager()
    init_local(cm)
    cm.add_profile("a", "", "https://api.example.com", KEY_A)
    cm.add_profile("b", "", "https://backup.example.net", KEY_B)
    cm.add_profile("c", "", "https://relay.example.org/anthropic", KEY_C)
    profiles = cm.list_profiles()
    # As the CLI does: chosen primaries at priority 1, secondaries at priority 2.
    endpoints = [Endpoint.from_profile(profiles[0], weight=100, priority=1),
                 Endpoint.from_profile(profiles[1], weight=100, priority=2)]
    first = endpoints[0]
    cluster = ConfigProfile(name="work", description="Endpoint 集群 - 1 主节点 + 1 副节点",
                            base_url=first.base_url, api_key=first.api_key, endpoints=endpoints,
                            priority="primary", enabled=True)
    cm.profiles["work"] = cluster
    cm.save_profiles()
    # A third endpoint added through the endpoint API, with metadata and its own timeout.
    extra = Endpoint(base_url="https://relay.example.org/anthropic", api_key=KEY_C, weight=50,
                     priority=3, max_failures=5, timeout=60, metadata={"note": "night relay", "tier": 2})
    cm.add_endpoint_to_profile("work", extra)
    # Health as the package records it on an endpoint (0.4.x persists it; 0.6.x does not).
    ep = cm.get_profile("work").endpoints[1]
    if hasattr(ep, "update_health_status"):
        res = ep.update_health_status(status="degraded", increment_requests=True, is_failure=True,
                                       response_time=812.5)
        if hasattr(res, "__await__"):
            import asyncio

            asyncio.run(res)
    cm.set_default_profile("work")
    cm.apply_profile("work")
    cm._save_local_cache()
    # `qcc priority set a primary` etc.: ~/.qcc/priority.json, which qcc keeps untouched.
    from fastcc.core.priority_manager import PriorityLevel, PriorityManager

    pm = PriorityManager(config_manager=cm)
    pm.set_priority("a", PriorityLevel.PRIMARY)
    pm.set_priority("b", PriorityLevel.SECONDARY)
    pm.set_priority("c", PriorityLevel.FALLBACK)
    pm.switch_to("b", reason="fixture")


def settings_variants(out: Path) -> None:
    """Settings as older caches have them: storage never initialised, sync on, no default."""
    fresh_home(out, "settings")
    cm = manager()
    cm.user_id = "github:alice"
    cm.settings.update({"storage_backend_type": "github", "storage_initialized": True,
                        "auto_sync": True, "encryption_enabled": True})
    cm.profiles.clear()
    from fastcc.core.config import ConfigProfile

    cm.profiles["only"] = ConfigProfile("only", "unicode ✓ 描述", "https://api.example.com/", KEY_A,
                                        priority="secondary", enabled=False)
    cm._save_local_cache()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_files(out: Path) -> None:
    """Run the package's proxy against endpoints that refuse connections: proxy.pid while it runs,
    failure_endpoints.json once it has queued them."""
    from fastcc.core.config import ConfigProfile
    from fastcc.core.endpoint import Endpoint

    home = fresh_home(out, "proxy")
    cm = manager()
    init_local(cm)
    dead1, dead2 = free_port(), free_port()
    endpoints = [Endpoint(base_url=f"http://127.0.0.1:{dead1}", api_key=KEY_A, priority=1),
                 Endpoint(base_url=f"http://127.0.0.1:{dead2}", api_key=KEY_B, priority=2)]
    cm.profiles["dead"] = ConfigProfile(name="dead", base_url=endpoints[0].base_url, api_key=KEY_A,
                                        endpoints=endpoints, priority="primary")
    cm.settings["default_profile"] = "dead"
    cm._save_local_cache()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from fastcc.cli import main; main()", "proxy", "start",
                             "--cluster", "dead", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    qcc_dir = home / ".qcc"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        # 0.4.x writes ~/.qcc/proxy.pid, 0.6.x ~/.fastcc/proxy.pid (with a cluster_name).
        pid_files = [qcc_dir / "proxy.pid", home / ".fastcc" / "proxy.pid"]
        while time.time() < deadline and not any(p.exists() for p in pid_files):
            time.sleep(0.1)
        pid_file = next(p for p in pid_files if p.exists())
        shutil.copy(pid_file, home / "proxy.pid.running")
        body = json.dumps({"model": "claude-3-5-haiku-20241022", "max_tokens": 10,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        for _ in range(2):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/messages", data=body, method="POST",
                                         headers={"content-type": "application/json", "x-api-key": "proxy-managed"})
            try:
                urllib.request.urlopen(req, timeout=60).read()
            except (urllib.error.URLError, OSError):
                pass
        # 0.4.x persists the queue at once; 0.6.x keeps it in memory only (its _save is a no-op).
        queue = qcc_dir / "failure_endpoints.json"
        queue_deadline = min(deadline, time.time() + 15)
        while time.time() < queue_deadline and not (queue.exists() and json.loads(queue.read_text())["failed_endpoints"]):
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    # The pid file as the running proxy left it (the package removes it on a clean stop).
    shutil.move(home / "proxy.pid.running", pid_file)
    for noise in (qcc_dir / "proxy.log", home / ".fastcc" / "proxy.log"):
        noise.unlink(missing_ok=True)
    import fastcc

    persists = fastcc.__version__.startswith("0.4")
    if persists and not json.loads((qcc_dir / "failure_endpoints.json").read_text())["failed_endpoints"]:
        sys.exit("the Python proxy queued no endpoint")


def cloud_folder(out: Path) -> None:
    """The cloud-folder backend: `qcc init` choosing the cloud drive (Dropbox here), profiles and a
    cluster added, `sync_to_cloud` writing ~/Dropbox/FastCC/fastcc_config.json."""
    from fastcc.core.config import ConfigProfile
    from fastcc.core.endpoint import Endpoint
    from fastcc.storage.cloud_file import CloudFileBackend

    home = fresh_home(out, "cloud")
    (home / "Dropbox").mkdir()
    cm = manager()
    backend = CloudFileBackend()
    if not backend.is_available():
        sys.exit("the cloud-folder backend found no cloud drive")
    cm.storage_backend = backend
    cm.user_id = f"cloud:{os.environ['USER']}"
    cm.settings.update({"storage_backend_type": "cloud", "storage_initialized": True})
    cm.add_profile("solo", "my main key", "https://api.example.com", KEY_A)
    cm.add_profile("relay", "", "https://relay.example.org/anthropic", KEY_C)
    endpoints = [Endpoint(base_url="https://api.example.com", api_key=KEY_A, priority=1),
                 Endpoint(base_url="https://backup.example.net", api_key=KEY_B, priority=2)]
    cm.profiles["team"] = ConfigProfile(name="team", description="shared", base_url=endpoints[0].base_url,
                                        api_key=KEY_A, endpoints=endpoints, priority="primary")
    cm.set_default_profile("team")
    if not cm.sync_to_cloud():
        sys.exit("sync_to_cloud failed")


def load_cloud(folder: Path) -> None:
    """The Python package's cloud-folder backend reads a fastcc_config.json qcc pushed."""
    from fastcc.storage.cloud_file import CloudFileBackend

    os.environ["HOME"] = str(folder.parent)
    raw = json.loads((folder / "fastcc_config.json").read_text())
    cm = manager()
    cm.storage_backend = CloudFileBackend(str(folder))
    if not cm.sync_from_cloud():
        sys.exit("python could not pull the folder qcc pushed")
    want = set(raw.get("profiles", {}))
    if set(cm.profiles) != want:
        sys.exit(f"python pulled {sorted(cm.profiles)}, the folder has {sorted(want)}")
    for name, p in cm.profiles.items():
        eps = raw["profiles"][name].get("endpoints") or []
        if [e.api_key for e in p.endpoints] != [e["api_key"] for e in eps]:
            sys.exit(f"profile {name}: keys read differently by python")
    print(f"python pulled {len(want)} profiles from {folder}")


def make(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    only = os.environ.get("QCC_PY_SCENARIOS", "").split()
    for scenario in (single_profiles, clusters, settings_variants, proxy_files, cloud_folder):
        if not only or scenario.__name__ in only:
            scenario(out)
    for junk in out.rglob("*.lock"):
        junk.unlink()


def load(home: Path) -> None:
    """The Python package reads a cache.json (after qcc rewrote it) and sees every profile."""
    os.environ["HOME"] = str(home)
    raw = json.loads((home / ".fastcc" / "cache.json").read_text())
    cm = manager()
    want = set(raw.get("profiles", {}))
    got = set(cm.profiles)
    if want != got:
        sys.exit(f"python loaded {sorted(got)}, file has {sorted(want)}")
    for name, p in cm.profiles.items():
        eps = raw["profiles"][name].get("endpoints") or []
        if len(p.endpoints) != len(eps):
            sys.exit(f"profile {name}: python sees {len(p.endpoints)} endpoints, file has {len(eps)}")
        for ep, rep in zip(p.endpoints, eps):
            if (ep.id, ep.base_url, ep.priority) != (rep["id"], rep["base_url"], rep.get("priority", 1)):
                sys.exit(f"profile {name}: endpoint {rep['id']} read differently by python")
    print(f"python loaded {len(got)} profiles from {home}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "load", "load-cloud"):
        sys.exit("usage: python_fixtures.py make OUT_DIR | load HOME_DIR | load-cloud FOLDER")
    {"make": make, "load": load, "load-cloud": load_cloud}[sys.argv[1]](Path(sys.argv[2]).resolve())
