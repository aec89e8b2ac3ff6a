"""The service's status over HTTP (loopback by default): `GET /health` is JSON with the state
and every counter, `GET /metrics` the same counters in Prometheus' text format. Read-only."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import ConfigError

Status = Callable[[], dict[str, Any]]


class StatusServer:
    """Serves `status()` (a dict with "state" and "counters") on (host, port) in a thread."""

    def __init__(self, address: tuple[str, int], status: Status) -> None:
        handler = type("Handler", (_Handler,), {"status": staticmethod(status)})
        try:
            self.server = ThreadingHTTPServer(address, handler)
        except OSError as exc:
            raise ConfigError(f"cannot serve the status on {address[0]}:{address[1]}: {exc.strerror or exc}") from None
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="kamlog-status", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    status: Status

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/health"):
            self._send(200, "application/json", json.dumps(self.status(), indent=1) + "\n")
        elif path == "/metrics":
            self._send(200, "text/plain; version=0.0.4", metrics(self.status()))
        else:
            self._send(404, "text/plain", "not found: try /health or /metrics\n")

    def _send(self, code: int, kind: str, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the service's log is for what it does, not for who asked how it is


def metrics(status: dict[str, Any]) -> str:
    """The numeric counters as Prometheus gauges named kamlog_<counter>."""
    lines = []
    for name, value in status.get("counters", {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append(f"kamlog_{name} {value}")
    lines.append(f'kamlog_up{{state="{status.get("state", "unknown")}"}} 1')
    return "\n".join(lines) + "\n"
