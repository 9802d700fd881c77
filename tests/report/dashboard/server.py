"""The dashboard served from a thread of its own (its own event loop) on 127.0.0.1, a free port, for tests and
scripts that drive it synchronously (Playwright's sync API, urllib). Start and stop are waited on with
threading events, never with sleeps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kubemark.report.dashboard import DashboardServer

__all__ = ["running_dashboard"]


@contextmanager
def running_dashboard(roots: Sequence[Path], timeout: float = 30.0) -> Iterator[str]:
    """Yields the base URL (http://127.0.0.1:PORT) while the dashboard serves `roots`; stops it on exit."""
    loop = asyncio.new_event_loop()
    server = DashboardServer(roots, host="127.0.0.1", port=0)
    started = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.stop())
            loop.close()

    thread = threading.Thread(target=main, name="dashboard", daemon=True)
    thread.start()
    if not started.wait(timeout):
        raise RuntimeError("the dashboard did not start")
    if failure:
        raise RuntimeError(f"the dashboard did not start: {failure[0]!r}") from failure[0]
    try:
        yield server.url
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
