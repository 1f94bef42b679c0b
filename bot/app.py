"""The gateway and console application factory."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError

from bot import redis_client
from bot.agencies import load_deployment
from bot.appkeys import BACKGROUND, DEPLOYMENT, SERVICES, SETTINGS, STOP
from bot.gateway.monitor import run_monitor
from bot.gateway.routes import routes
from bot.gateway.worker import run_worker
from bot.safety_net import get_safety_net
from bot.services import Services
from bot.settings import Settings

logger = logging.getLogger(__name__)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Errors as JSON for the gateway (the console has its own pages)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or request.path.startswith("/console"):
            raise
        return web.json_response({"error": exc.reason, "status": exc.status},
                                 status=exc.status, headers=_keep(exc.headers))
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("unhandled error on %s", request.path)
        return web.json_response({"error": "internal error", "status": 500}, status=500)


def _keep(headers) -> dict:
    return {k: v for k, v in headers.items() if k.lower() in ("allow", "retry-after")}


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings, deployment = app[SETTINGS], app[DEPLOYMENT]
    redis = redis_client.connect(settings, health_check_interval=30,
                                 client_name="beacon-gateway")
    http = aiohttp.ClientSession()
    # Built now, not on the first message: an emergency must not wait for it.
    net = await asyncio.get_running_loop().run_in_executor(None, get_safety_net)
    app[SERVICES] = Services.build(settings, deployment, redis, http, net)
    try:
        moved = await app[SERVICES].queue.rehome()
        if moved:
            logger.warning("%d queue entries moved to the agency that owns them now", moved)
    except (RedisError, OSError) as exc:  # the next start-up tries again
        logger.error("could not move queue entries between agencies: %s", exc)
    # Started with the app, so aiohttp's graceful shutdown does not wait on it as on a
    # request's unfinished work (a lane started by the first message held SIGTERM 60 s).
    app[SERVICES].start_cpu()
    yield
    app[SERVICES].close_cpu()
    app[SERVICES].delivery.cancel_background()
    await http.close()
    await redis.close(close_connection_pool=True)


async def _workers(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    stop = app[STOP]
    tasks = [asyncio.create_task(run_worker(services, stop))
             for _ in range(services.settings.workers)]
    tasks.append(asyncio.create_task(run_monitor(services, stop)))
    yield
    stop.set()
    background = app[BACKGROUND]
    if background:
        await asyncio.wait(background, timeout=10)
    done, pending = await asyncio.wait(tasks, timeout=3)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _stop_workers(app: web.Application) -> None:
    """On SIGTERM, before aiohttp waits for unfinished work: workers finish the message in
    hand and take no other, the monitor stops (its ticks would otherwise keep that wait
    busy until its 60 s timeout)."""
    app[STOP].set()


def create_app(settings: Settings | None = None, *, workers: bool = True) -> web.Application:
    """The gateway (webhooks, web chat, health) with the staff console under /console/."""
    from bot.console.app import create_console

    settings = settings or Settings.from_env()
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[json_errors])
    app[SETTINGS] = settings
    app[DEPLOYMENT] = load_deployment(settings)
    app[BACKGROUND] = set()
    app[STOP] = asyncio.Event()
    app.on_shutdown.append(_stop_workers)
    app.cleanup_ctx.append(_services)
    if workers:
        app.cleanup_ctx.append(_workers)
    app.add_routes(routes)
    app.add_subapp("/console/", create_console(app))
    return app
