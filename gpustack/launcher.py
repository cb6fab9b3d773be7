"""Runs the server (uvicorn) and/or the worker agent in one event loop, as the config asks."""

import asyncio
import logging
import signal

from gpustack.config import Config

logger = logging.getLogger(__name__)


async def _serve_server(config: Config) -> None:
    from gpustack.server.app import create_app
    from gpustack.server.serving import GracefulServer
    from gpustack.server.wiring import server_hooks

    app = create_app(config, start_hooks=server_hooks())
    server = GracefulServer(app, host=config.host, port=config.port, log_level=config.log_level, access_log=False)
    logger.info("starting the server on http://%s:%d", config.host, config.port)  # uvicorn logs the bind
    await server.serve()


async def _serve_worker(config: Config, server_url: str) -> None:
    from gpustack.worker.agent import WorkerAgent

    agent = WorkerAgent(config, server_url=server_url)
    await agent.run()


def _cancel_on_sigterm() -> None:
    """SIGTERM cancels the main task like Ctrl-C does, so engines are stopped rather than orphaned."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def run(config: Config) -> None:
    if config.server_url:
        if not config.token:
            raise ValueError("a worker needs --token (the server's cluster token)")
        _cancel_on_sigterm()  # with a server, uvicorn handles SIGTERM and its exit cancels the worker
        await _serve_worker(config, config.server_url.rstrip("/"))
        return
    config.ensure_token()
    config.secret_key()  # a missing key is created; an empty or short one stops the start here
    tasks = [asyncio.create_task(_serve_server(config), name="server")]
    if not config.disable_worker:
        host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
        tasks.append(asyncio.create_task(_serve_worker(config, f"http://{host}:{config.port}"), name="worker"))
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()
