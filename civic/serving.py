"""uvicorn's server, stopped by SIGINT / SIGTERM without re-raising the signal afterwards.

uvicorn (0.29+) raises the signal it caught again once it has shut down, so that the default handler ends
the process. Under ``asyncio.run`` that turns a clean Ctrl-C into a ``KeyboardInterrupt`` and a logged
``CancelledError`` traceback from the lifespan, which an operator reads as a crash. Here the signal only
asks the server to stop (a second one forces it), and the process exits normally when serving returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in _SIGNALS:
            try:
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no signals here: whoever runs us stops us
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)


def serve(app: object, host: str, port: int) -> None:
    """Like ``uvicorn.run`` with civic's logging, ending quietly on SIGINT / SIGTERM."""
    # proxy_headers off: which X-Forwarded-For to believe is CIVIC_TRUSTED_PROXIES's call (shared/http/clients.py).
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False)  # type: ignore[arg-type]
    server = QuietServer(config)
    asyncio.run(server.serve())
