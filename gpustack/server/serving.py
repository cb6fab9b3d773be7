"""The uvicorn server for the app: graceful on SIGTERM/SIGINT, and ends watch streams first on shutdown."""

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI


class GracefulServer(uvicorn.Server):
    """Watch streams never end by themselves; closing the event bus first lets uvicorn drain quickly."""

    def __init__(self, app: FastAPI, **options: Any):
        options.setdefault("timeout_graceful_shutdown", 5)
        super().__init__(uvicorn.Config(app, **options))
        self.app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Unlike uvicorn's, does not re-raise the signal after shutdown: that would kill the process
        before the embedded worker stops its engines."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def shutdown(self, sockets: Any = None) -> None:
        self.app.state.bus.close()
        await super().shutdown(sockets=sockets)
