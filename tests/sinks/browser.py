"""A real headless Chromium driven over the DevTools protocol, with nothing but the stdlib.

Chromium's `--remote-debugging-pipe` speaks the protocol on file descriptors 3 (commands in) and
4 (replies and events out), one JSON message per NUL-terminated chunk: the transport Playwright
and Puppeteer use, with no port to pick and no websocket client to install.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 60.0  # seconds a command may take before the test fails instead of hanging


class BrowserError(Exception):
    pass


def need_chromium() -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (tests/run installs it)")


class Chromium:
    """One headless browser with one page: `open(url)`, `evaluate(js)`, `click(selector)`,
    `screenshot(path)`. Use it as a context manager: the browser is stopped by its PID."""

    def __init__(self, workdir: Path, width: int = 1400, height: int = 900) -> None:
        self.workdir = workdir
        self.size = (width, height)
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = ""
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        commands_in, self._commands = os.pipe()
        self._replies, replies_out = os.pipe()

        def as_fds_3_and_4() -> None:  # in the child, before exec
            a, b = os.dup(commands_in), os.dup(replies_out)
            os.dup2(a, 3)
            os.dup2(b, 4)

        profile = self.workdir / "chromium-profile"
        self.stderr = open(self.workdir / "chromium.stderr", "wb")
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", f"--window-size={self.size[0]},{self.size[1]}",
             "--no-first-run", "--no-default-browser-check", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr, close_fds=False,
            preexec_fn=as_fds_3_and_4, start_new_session=True)
        os.close(commands_in)
        os.close(replies_out)
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        try:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # the group Chromium leads: its zygote and renderers too
        except ProcessLookupError:
            pass
        proc.wait()
        os.close(self._commands)
        os.close(self._replies)
        self.stderr.close()

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one protocol command (on the page once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply["result"]  # type: ignore[no-any-return]
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        while True:
            for n, event in enumerate(self._events):
                if event["method"] == method:
                    del self._events[n]
                    return event
            reply = self._read()
            if "method" in reply:
                self._events.append(reply)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise BrowserError(f"Chromium said nothing for {TIMEOUT:g} s (see {self.workdir}/chromium.stderr)")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited (see {self.workdir}/chromium.stderr)")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)  # type: ignore[no-any-return]

    def open(self, url: str) -> None:
        self._events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str, index: int = 0) -> None:
        """A real mouse click (press and release) in the middle of the element, scrolled into view."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelectorAll({json.dumps(selector)})[{index}];"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path
