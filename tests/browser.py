"""Test helper: headless Chromium for checking static reports (screenshots, rendered DOM, console errors).

Only ever opens one local file (a ``file://`` URL). Network use is shut off: Chromium's background
services are disabled, every host name resolves to nothing (``--host-resolver-rules``), every
http(s) request goes to a dead proxy, and, when console errors are collected, any request that is
neither ``file:`` nor ``data:`` is failed and reported as an error.

Console errors are read through the Chrome DevTools protocol over a pipe (``--remote-debugging-pipe``:
NUL-separated JSON on file descriptors 3 and 4), so no websocket library is needed.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from srjudge.errors import MissingDependencyError

INSTALL_HINT = "sudo apt-get update && sudo apt-get install -y chromium   (Debian/Ubuntu; /usr/bin/chromium)"
CHROMIUM_ENV = "SRJUDGE_CHROMIUM"
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

_BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-crash-reporter",
    "--disable-breakpad",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # Every http(s) request, loopback included, goes to a proxy that is not there.
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)

# After load: images that did not decode (broken file links or bad data URIs) count as errors.
_BROKEN_IMAGES_JS = (
    "JSON.stringify(Array.from(document.images)"
    ".filter(i => !i.complete || i.naturalWidth === 0)"
    ".map(i => (i.getAttribute('src') || '').slice(0, 80)))"
)


class ChromiumNotFoundError(MissingDependencyError):
    """No Chromium or Chrome executable was found."""


def find_chromium() -> Path | None:
    """The Chromium/Chrome executable: ``$SRJUDGE_CHROMIUM``, else the first of the usual names on PATH."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return Path(env) if Path(env).is_file() else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def require_chromium() -> Path:
    """Like :func:`find_chromium`, but raises with the install command when there is none."""
    found = find_chromium()
    if found is None:
        raise ChromiumNotFoundError(
            f"Chromium is not installed (looked for ${CHROMIUM_ENV} and {', '.join(_NAMES)} on PATH). "
            f"Install it: {INSTALL_HINT}"
        )
    return found


def _file_url(html_path: Path) -> str:
    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file to open in the browser.")
    return path.as_uri()


@contextmanager
def _profile() -> Iterator[str]:
    """A throw-away Chromium profile folder, removed afterwards (retried: helpers exit a moment late)."""
    folder = tempfile.mkdtemp(prefix="srjudge-chromium-")
    try:
        yield folder
    finally:
        for _ in range(20):
            shutil.rmtree(folder, ignore_errors=True)
            if not os.path.exists(folder):
                break
            time.sleep(0.1)


def _run(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )


def render_screenshot(
    html_path: Path, png_path: Path, width: int = 1280, height: int = 2000, *, timeout: float = 60.0
) -> Path:
    """Render the local HTML file headless and save a ``width`` x ``height`` PNG screenshot."""
    chromium = require_chromium()
    url = _file_url(html_path)
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with _profile() as profile:
        result = _run(
            [
                str(chromium),
                *_BASE_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png}",
                url,
            ],
            timeout,
        )
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(
            f"Chromium wrote no screenshot to {png} (exit {result.returncode}): {result.stderr[-2000:]}"
        )
    return png


def dump_dom(html_path: Path, *, timeout: float = 60.0) -> str:
    """The DOM of the local HTML file after load, serialised (``--dump-dom``)."""
    chromium = require_chromium()
    url = _file_url(html_path)
    with _profile() as profile:
        result = _run([str(chromium), *_BASE_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url], timeout)
    if result.returncode != 0 or "<html" not in result.stdout.lower():
        raise RuntimeError(
            f"Chromium could not dump the DOM (exit {result.returncode}): {result.stderr[-2000:]}"
        )
    return result.stdout


class _Pipe:
    """A minimal DevTools-protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, to_browser: int, from_browser: int, deadline: float) -> None:
        self._out = to_browser
        self._in = from_browser
        self._deadline = deadline
        self._buffer = b""
        self._next_id = 0
        self._pending: deque[dict[str, Any]] = deque()
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read(self, until: float) -> dict[str, Any] | None:
        """The next message, or None when ``until`` passes first; the overall deadline raises."""
        while b"\0" not in self._buffer:
            now = time.monotonic()
            if now >= self._deadline:
                raise TimeoutError("Chromium did not answer in time")
            if now >= until:
                return None
            ready, _, _ = select.select([self._in], [], [], min(until, self._deadline) - now)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self.events.append(message)
            self._pending.append(message)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send a command and wait for its answer; events that arrive meanwhile are queued."""
        wanted = self.send(method, params, session)
        while True:
            message = self._read(math.inf)
            if message is not None and message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return message.get("result", {})

    def next_event(self, until: float = math.inf) -> dict[str, Any] | None:
        """The next unhandled event, or None when ``until`` passes first."""
        while not self._pending:
            if self._read(until) is None:
                return None
        return self._pending.popleft()


_EXEC_ON_3_4 = (
    "import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); os.dup2(a, 3); os.dup2(b, 4); "
    "os.close(a); os.close(b); os.execv(sys.argv[3], sys.argv[3:])"
)


def _move_up(fd: int) -> int:
    """Duplicate ``fd`` onto a descriptor number >= 10 and close the original."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


@contextmanager
def _devtools(timeout: float) -> Iterator[_Pipe]:
    """Start headless Chromium with a DevTools pipe on descriptors 3 (commands) and 4 (answers)."""
    chromium = require_chromium()
    cmd_read, cmd_write = os.pipe()
    ans_read, ans_write = os.pipe()
    # The child's ends move to numbers >= 10 so that they cannot clash with 3 and 4 below.
    cmd_read, ans_write = (_move_up(fd) for fd in (cmd_read, ans_write))
    with (
        _profile() as profile,
        tempfile.TemporaryFile() as log,
    ):
        args = [str(chromium), *_BASE_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        # A Python exec-wrapper moves our pipe ends onto 3 and 4, then becomes Chromium (no shell: dash
        # only takes one-digit descriptors).
        process = subprocess.Popen(
            [sys.executable, "-c", _EXEC_ON_3_4, str(cmd_read), str(ans_write), *args],
            pass_fds=(cmd_read, ans_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        os.close(cmd_read)
        os.close(ans_write)
        try:
            yield _Pipe(cmd_write, ans_read, time.monotonic() + timeout)
        except (RuntimeError, TimeoutError) as exc:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{exc}; Chromium's log ends: {tail}") from exc
        finally:
            with suppress(OSError):
                os.write(cmd_write, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            os.close(cmd_write)
            os.close(ans_read)


def _describe(event: dict[str, Any]) -> str | None:
    """An error message for a console/log/exception event, or None if it is not an error."""
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        args = params.get("args", [])
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
        return f"console.{params['type']}: {text}"
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        exception = details.get("exception", {})
        return f"exception: {exception.get('description') or details.get('text', '')}"
    if method == "Log.entryAdded":
        entry = params.get("entry", {})
        if entry.get("level") == "error":
            url = entry.get("url", "")
            return f"{entry.get('source', 'log')}: {entry.get('text', '')}" + (f" ({url})" if url else "")
    return None


def console_errors(html_path: Path, *, timeout: float = 60.0, settle: float = 0.5) -> list[str]:
    """Errors the page reports when loaded: console errors, uncaught exceptions, failed loads.

    Collected over the DevTools protocol: ``console.error``/``console.assert`` calls, uncaught
    exceptions, browser log entries at level error (failed resource loads, CSP violations), any
    request to something other than ``file:``/``data:`` (blocked and reported), and images that
    did not decode.
    """
    url = _file_url(html_path)
    errors: list[str] = []
    with _devtools(timeout) as cdp:
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable", session=session)
        cdp.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session=session)
        cdp.send("Page.navigate", {"url": url}, session=session)
        settle_until = math.inf
        while (event := cdp.next_event(settle_until)) is not None:
            if event["method"] == "Fetch.requestPaused":
                _answer_request(cdp, event, session, errors)
            elif event["method"] == "Page.loadEventFired":
                settle_until = time.monotonic() + settle
        broken = cdp.call(
            "Runtime.evaluate", {"expression": _BROKEN_IMAGES_JS, "returnByValue": True}, session=session
        )
        errors.extend(f"broken image: {src}" for src in json.loads(broken["result"]["value"]))
        errors.extend(msg for ev in cdp.events if (msg := _describe(ev)) is not None)
    return errors


def _answer_request(cdp: _Pipe, event: dict[str, Any], session: str, errors: list[str]) -> None:
    """Let ``file:``/``data:`` requests through; fail anything else and record it."""
    params = event["params"]
    request_url: str = params["request"]["url"]
    if request_url.startswith(("file:", "data:")):
        cdp.call("Fetch.continueRequest", {"requestId": params["requestId"]}, session=session)
    else:
        errors.append(f"blocked non-local request: {request_url[:200]}")
        cdp.call(
            "Fetch.failRequest",
            {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
            session=session,
        )
