"""Helpers for tests/test_ui.py: `dagster dev` in its own process group, and headless Chromium
driven over the Chrome DevTools Protocol with the `websockets` package that dagster-webserver
already depends on (no selenium, no chromedriver)."""

from __future__ import annotations

import atexit
import base64
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, TypeVar

import requests
from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
VIEWPORT = (1600, 1000)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll `predicate` until it returns something truthy and return it; raise TimeoutError
    naming `what` (and the last exception the predicate raised) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except (ProcessDied, AssertionError):
            raise
        except Exception as error:  # keep polling; reported if it never succeeds
            last_error = error
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


class ProcessDied(RuntimeError):
    pass


def _new_session_with_default_sigint() -> None:
    """In the child before exec: its own process group (so teardown reaches every process it
    spawns), and SIGINT at its default even if the parent ignores it (a background job of a
    non-interactive shell does), so that Dagster's graceful shutdown on SIGINT/SIGTERM works."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_process_group(args: list[str], log_path: Path, **kwargs: Any) -> subprocess.Popen:
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_new_session_with_default_sigint,
            **kwargs,
        )

    # A safety net should the test process exit without its fixtures' teardown.
    def kill_group_if_running() -> None:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    process._kill_at_exit = kill_group_if_running  # type: ignore[attr-defined]
    atexit.register(kill_group_if_running)
    return process


def stop_process_group(
    process: subprocess.Popen, grace: float, first: signal.Signals = signal.SIGTERM
) -> None:
    """Send `first` to the process group, wait up to `grace` seconds for the leader, then
    SIGKILL whatever is left in the group. Once the leader has been reaped its group id could
    be reused, so a second call does nothing."""
    if getattr(process, "_group_stopped", False):
        return
    process._group_stopped = True  # type: ignore[attr-defined]
    atexit.unregister(process._kill_at_exit)  # type: ignore[attr-defined]
    try:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, first)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
    finally:
        # Children (code servers, the daemon, run workers) may outlive the leader.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


class DagsterDev:
    """`make dev` (the UI as users start it) on a free port, in its own process group."""

    def __init__(self, project_root: Path, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process = start_process_group(
            ["make", "--no-print-directory", "dev", f"PORT={self.port}"],
            log_path,
            cwd=project_root,
            env=env,
        )

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise ProcessDied(
                f"make dev exited with {self.process.returncode}; its log:\n{self.log_tail()}"
            )

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]

    def wait_ready(self, timeout: float) -> list[dict]:
        """Wait for /server_info, then for every code location to have loaded (a location that
        failed to import is `LOADED` with a PythonError: that fails at once). Returns
        [{name, repositories: [{name}]}] per location."""
        deadline = time.monotonic() + timeout

        def server_info() -> bool:
            self.check_alive()
            return requests.get(f"{self.url}/server_info", timeout=5).ok

        wait_until(server_info, timeout, f"{self.url}/server_info")

        def locations() -> list[dict] | None:
            self.check_alive()
            data = self.graphql(
                """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                       name loadStatus locationOrLoadError { __typename
                         ... on PythonError { message stack }
                         ... on RepositoryLocation { name repositories { name } } } } } } }"""
            )
            entries = data["workspaceOrError"]["locationEntries"]
            if not entries or any(entry["loadStatus"] != "LOADED" for entry in entries):
                return None
            for entry in entries:
                loaded = entry["locationOrLoadError"]
                assert loaded and loaded["__typename"] == "RepositoryLocation", (
                    f"code location {entry['name']} failed to load: {loaded}"
                )
            return [entry["locationOrLoadError"] for entry in entries]

        return wait_until(
            locations, max(deadline - time.monotonic(), 5), "the code locations to load"
        )

    def close(self) -> None:
        # Dagster shuts down cleanly (code servers, temp workspace) on SIGINT.
        stop_process_group(self.process, grace=20, first=signal.SIGINT)


# Every line of text the page renders, scrolling each scrollable element through so that
# virtualized lists and tables render all their rows at some point.
COLLECT_LINES_JS = """
(async () => {
  const seen = new Set();
  const grab = () => {
    for (const line of document.body.innerText.split('\\n')) {
      const text = line.trim();
      if (text) seen.add(text);
    }
  };
  const frame = () => new Promise((resolve) => setTimeout(resolve, 60));
  grab();
  const scrollers = Array.from(document.querySelectorAll('*')).filter((el) => {
    const style = getComputedStyle(el);
    return el.scrollHeight > el.clientHeight + 8 && /(auto|scroll)/.test(style.overflowY);
  });
  for (const el of scrollers) {
    const start = el.scrollTop;
    const step = Math.max(64, Math.floor(el.clientHeight * 0.6));
    for (let top = 0; top < el.scrollHeight; top += step) {
      el.scrollTop = top;
      await frame();
      grab();
    }
    el.scrollTop = el.scrollHeight;
    await frame();
    grab();
    el.scrollTop = start;
  }
  return Array.from(seen);
})()
"""


class Chromium:
    """Headless Chromium with one page, driven over the DevTools Protocol."""

    def __init__(self, user_data_dir: Path, log_path: Path, binary: str = CHROMIUM):
        user_data_dir.mkdir(parents=True, exist_ok=True)
        port_file = user_data_dir / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)  # a stale one from an earlier browser would mislead
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._cleanup = ExitStack()
        self.process = start_process_group(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
                f"--user-data-dir={user_data_dir}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            log_path,
        )
        try:

            def devtools_port() -> str | None:
                if self.process.poll() is not None:
                    raise ProcessDied(f"chromium exited with {self.process.returncode}")
                text = port_file.read_text() if port_file.exists() else ""
                return text.split()[0] if text.strip() else None

            base = f"http://127.0.0.1:{wait_until(devtools_port, 30, 'DevToolsActivePort')}"
            page = wait_until(
                lambda: [
                    target
                    for target in requests.get(f"{base}/json/list", timeout=5).json()
                    if target["type"] == "page"
                ],
                30,
                "a Chromium page target",
            )[0]
            self._ws = self._cleanup.enter_context(
                connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
            )
            self.send("Page.enable")
            self.set_viewport(*VIEWPORT)
        except BaseException:
            self.close()
            raise

    def send(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        """Send one CDP command and wait for its reply (events in between are dropped)."""
        assert self._ws is not None
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {method} within {timeout} s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def set_viewport(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def navigate(self, url: str) -> None:
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise RuntimeError(f"navigating to {url} failed: {result['errorText']}")

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def lines(self) -> set[str]:
        """Every (stripped) line of document.body.innerText, scrolling virtualized lists."""
        return set(self.evaluate(COLLECT_LINES_JS, timeout=60) or [])

    def wait_for_lines(self, expected: set[str], what: str, timeout: float = 30.0) -> set[str]:
        """Poll the rendered text until every string of `expected` is one of its lines;
        on timeout, fail naming the ones that never appeared."""
        state: dict[str, set[str]] = {"lines": set()}

        def present() -> bool:
            state["lines"] = self.lines()
            return expected <= state["lines"]

        try:
            wait_until(present, timeout, what, interval=0.5)
        except TimeoutError as error:
            missing = sorted(expected - state["lines"])
            raise AssertionError(
                f"{what}: never rendered {missing} within {timeout:.0f} s "
                f"(url {self.evaluate('location.href')}); the page shows:\n" + self.text()[:3000]
            ) from error
        return state["lines"]

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self._cleanup.close()
        finally:
            stop_process_group(self.process, grace=5)
