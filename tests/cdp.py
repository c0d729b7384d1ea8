"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (standard library
only: no WebDriver, no websocket package), used by ``tests/browser_pages.py``.

Chromium reads NUL-terminated JSON commands on file descriptor 3 and writes responses and events
on descriptor 4. One page is opened and attached in "flatten" mode, so every command carries its
``sessionId``; events are collected until :meth:`Browser.events` takes them.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import tempfile
import threading
import time


class CDPError(RuntimeError):
    """A DevTools command failed or timed out."""


class Browser:
    """Headless Chromium with one page. ``block_external`` makes every host except 127.0.0.1
    unresolvable, so a page that reaches for a CDN fails loudly instead of going online."""

    def __init__(self, executable: str, block_external: bool = True, timeout: float = 60):
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="colorlab-chromium-")
        args = [executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--hide-scrollbars", "--force-color-profile=srgb", "--disable-extensions",
                "--font-render-hinting=none", f"--user-data-dir={self._profile.name}"]
        if block_external:
            args.append("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def remap():  # in the child: the pipe ends become descriptors 3 and 4
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, close_fds=False,
                                      preexec_fn=remap)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._events: list[dict] = []
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", url="about:blank", session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True,
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._lock:
                    self._replies[-1] = {"error": {"message": "Chromium exited"}}
                    self._lock.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._lock:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                self._lock.notify_all()

    def send(self, method: str, session: bool = True, timeout: float | None = None, **params):
        """Run one DevTools command and return its ``result`` (raises :class:`CDPError`)."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        msg = {"id": ident, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._lock:
            while ident not in self._replies and -1 not in self._replies:
                if not self._lock.wait(max(0.0, deadline - time.monotonic())):
                    raise CDPError(f"{method}: no answer within {timeout or self.timeout} s")
            reply = self._replies.pop(ident, None) or self._replies[-1]
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def events(self) -> list[dict]:
        """Take the events received since the last call."""
        with self._lock:
            taken, self._events = self._events, []
        return taken

    def wait_event(self, method: str, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._lock:
            while True:
                for ev in self._events:
                    if ev.get("method") == method:
                        return ev
                if not self._lock.wait(max(0.0, deadline - time.monotonic())):
                    raise CDPError(f"no {method} within {timeout or self.timeout} s")

    def open(self, url: str, width: int, height: int = 900) -> None:
        """Load ``url`` in a ``width`` x ``height`` CSS-pixel viewport; wait for the load event."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.events()
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str, await_promise: bool = False):
        """The JSON value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:60]}...: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, path: str, full_page: bool = False) -> None:
        """Save the viewport, or the whole page (the viewport stretched to the page's height,
        at most 16,000 px), as a PNG."""
        metrics = self.evaluate("[window.innerWidth, window.innerHeight, "
                                "document.documentElement.scrollHeight]")
        if full_page:
            self.evaluate("window.scrollTo(0, 0)")
            self.send("Emulation.setDeviceMetricsOverride", width=metrics[0],
                      height=min(metrics[2], 16000), deviceScaleFactor=1, mobile=False)
            self.evaluate("new Promise(r => setTimeout(r, 300))", await_promise=True)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        if full_page:
            self.send("Emulation.setDeviceMetricsOverride", width=metrics[0], height=metrics[1],
                      deviceScaleFactor=1, mobile=False)
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (CDPError, OSError):
            pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
