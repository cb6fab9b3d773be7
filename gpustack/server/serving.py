"""The uvicorn server for the app: ends watch streams first on shutdown so it stays graceful."""

from typing import Any

import uvicorn
from fastapi import FastAPI


class GracefulServer(uvicorn.Server):
    """Watch streams never end by themselves; closing the event bus first lets uvicorn drain quickly."""

    def __init__(self, app: FastAPI, **options: Any):
        options.setdefault("timeout_graceful_shutdown", 5)
        super().__init__(uvicorn.Config(app, **options))
        self.app = app

    async def shutdown(self, sockets: Any = None) -> None:
        self.app.state.bus.close()
        await super().shutdown(sockets=sockets)
