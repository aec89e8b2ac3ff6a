"""A real Elasticsearch for the tests: Maven Central's integ-test-zip distribution (no JDK inside,
security off here), downloaded once and cached, run as an unprivileged user (it refuses root) on
free loopback ports with a small heap, and stopped by its process group's PID.

`python -m tests.elastic.server VERSION` downloads and unpacks one version (`tests/run` does it)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.corpus.runners import free_ports

# Maven serves no checksum for these zips: pinned here when first fetched.
SHA256 = {
    "9.2.0": "bf44938a0490ba2a303d39c9cb64b38963dd08c812ce93e10816e878585bcb6b",
    "8.19.21": "215d5f3dbf0609a149f6218a9e47b6ae2df34ebbff3c5754e35f15a5e5393c8a",
}
VERSIONS = tuple(SHA256)
MAVEN = "https://repo1.maven.org/maven2/org/elasticsearch/distribution/integ-test-zip/elasticsearch"
JAVA_HOMES = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/java-21-openjdk-amd64",
              "/usr/lib/jvm/java-17-openjdk-amd64")
NOBODY = 65534


def cache_dir() -> Path:
    # World-readable, so that the unprivileged user running Elasticsearch can read its home.
    chosen = os.environ.get("KAMLOG_TEST_CACHE") or ("/var/tmp/kamlog-test-cache" if os.geteuid() == 0 else
                                                     os.path.expanduser("~/.cache/kamlog-test-cache"))
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def install(version: str) -> Path:
    """Elasticsearch `version` unpacked in the cache (downloaded and checked against its
    pinned SHA-256 the first time)."""
    home = cache_dir() / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").exists():
        return home
    url = f"{MAVEN}/{version}/elasticsearch-{version}.zip"
    archive = cache_dir() / f"elasticsearch-{version}.zip"
    if not archive.exists():
        partial = archive.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=300) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        if digest != SHA256[version]:
            partial.unlink()
            raise RuntimeError(f"{url}: SHA-256 {digest}, expected {SHA256[version]}")
        partial.rename(archive)
    staging = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=f".unpack-{version}-"))
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, staging))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                target.chmod(mode & 0o777 | 0o444)
    for path in staging.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
    staging.chmod(0o755)
    try:
        (staging / f"elasticsearch-{version}").rename(home)
    except OSError:
        if not (home / "bin" / "elasticsearch").exists():
            raise
    shutil.rmtree(staging, ignore_errors=True)
    return home


def java_home(version: str) -> str:
    for candidate in JAVA_HOMES:
        if os.path.exists(os.path.join(candidate, "bin", "java")):
            if version.startswith("9") and "17" in candidate:
                continue
            return candidate
    raise RuntimeError(f"no Java for Elasticsearch {version} in {', '.join(JAVA_HOMES)}")


@dataclass
class Server:
    version: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    # With security on: the user the tests log in as, and the CA of the HTTP certificate that
    # Elasticsearch made itself on its first start (its security auto-configuration).
    user: str | None = None
    password: str | None = None
    # How it was launched, so that `restart` runs it again on the same port and data.
    command: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 180

    @property
    def ca_file(self) -> Path:
        return self.workdir / "config" / "certs" / "http_ca.crt"

    def get(self, path: str, timeout: float = 5) -> object:
        context = None
        headers = {}
        if self.url.startswith("https:"):
            context = ssl.create_default_context(cafile=str(self.ca_file))
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return json.load(response)

    def halt(self, kill: bool = False) -> None:
        """Stops the server (SIGTERM, or SIGKILL with `kill`, as a crash) and keeps its port,
        configuration and data for `restart`."""
        if self.process.poll() is None:
            # The launcher runs the server JVM as its child: signal the group we started.
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # The server JVM may outlive the launcher for a moment; its data lock and port go with it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, signal.SIGKILL if kill else 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def restart(self) -> None:
        """Starts the halted server again on the same port with the same data; returns once green."""
        self.halt()
        self.process = _launch(self.command, self.env, self.workdir)
        _wait_green(self, self.timeout)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self) -> str:
        out = self.workdir / "stdout.txt"
        return out.read_text(errors="replace")[-3000:] if out.exists() else ""


def http(server: Server, path: str, body: Any = None, method: str | None = None) -> Any:
    """One JSON request to a plain-HTTP test server, its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def start(version: str, heap: str = "512m", timeout: float = 180, secure: bool = False) -> Server:
    """A running, green server. `secure`: security on, as a production cluster has it (TLS on
    HTTP with a CA of its own, a file-realm superuser `kamlog`)."""
    home = install(version)
    workdir = Path(tempfile.mkdtemp(prefix=f"kamlog-es-{version}-"))
    workdir.chmod(0o755)
    conf = workdir / "config"
    shutil.copytree(home / "config", conf)
    http_port, transport_port = free_ports(2)
    (conf / "elasticsearch.yml").write_text(
        "discovery.type: single-node\n"
        "network.host: 127.0.0.1\n"
        f"http.port: {http_port}\n"
        f"transport.port: {transport_port}\n"
        f"path.data: {workdir / 'data'}\n"
        f"path.logs: {workdir / 'logs'}\n"
        "cluster.routing.allocation.disk.threshold_enabled: false\n"
        "action.destructive_requires_name: false\n"
        # Without a security setting of ours, a secure server configures TLS itself on first start.
        + ("" if secure else "xpack.security.enabled: false\n"))
    for sub in ("data", "logs", "tmp"):
        (workdir / sub).mkdir()
    env = {**os.environ, "ES_JAVA_HOME": java_home(version), "ES_PATH_CONF": str(conf),
           "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}", "ES_TMPDIR": str(workdir / "tmp")}
    env.pop("JAVA_HOME", None)
    unprivileged: list[str] = []
    if os.geteuid() == 0:
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        unprivileged = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    user, password = ("kamlog", "kamlog-" + os.urandom(6).hex()) if secure else (None, None)
    if secure:
        subprocess.run([*unprivileged, str(home / "bin" / "elasticsearch-users"), "useradd", str(user), "-p",
                        str(password), "-r", "superuser"], env=env, check=True, capture_output=True, timeout=120)
    command = (*unprivileged, str(home / "bin" / "elasticsearch"))
    scheme = "https" if secure else "http"
    server = Server(version, f"{scheme}://127.0.0.1:{http_port}", _launch(command, env, workdir), workdir, user,
                    password, command, env, timeout)
    _wait_green(server, timeout)
    return server


def _launch(command: tuple[str, ...], env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    out = open(workdir / "stdout.txt", "ab")
    try:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                                start_new_session=True)
    finally:
        out.close()


def _wait_green(server: Server, timeout: float) -> None:
    """Returns once the server is green; stops it (removing its files) and raises if it exits or
    is not green within `timeout` seconds."""
    process = server.process
    secure = server.url.startswith("https:")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = server.log_tail()
            server.stop()
            raise RuntimeError(f"Elasticsearch {server.version} exited with {process.returncode}:\n{tail}")
        try:
            if not secure or server.ca_file.exists():
                health = server.get("/_cluster/health?wait_for_status=green&timeout=1s")
                if isinstance(health, dict) and health.get("status") == "green":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"Elasticsearch {server.version} was not green within {timeout:.0f} s:\n{tail}")


if __name__ == "__main__":
    for wanted in sys.argv[1:] or VERSIONS:
        print(install(wanted))
