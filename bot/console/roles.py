"""Who may use a console route: every route needs a session (``auth_middleware``); a route
marked :func:`supervisor_only` also needs the supervisor role. The mark is checked in the
one middleware, so no handler repeats the check and none can forget it."""

from __future__ import annotations

from aiohttp import web

from bot.console.auth import SUPERVISOR

_MARK = "beacon_role"


def supervisor_only(handler):
    """Mark a console handler as the supervisors' (reports, staff accounts, sessions)."""
    setattr(handler, _MARK, SUPERVISOR)
    return handler


def required_role(request: web.Request) -> str | None:
    """The role the matched route needs beyond a session, if any."""
    return getattr(request.match_info.handler, _MARK, None)


def check_role(request: web.Request, role: str) -> None:
    """403 when the session's ``role`` may not use the matched route."""
    needed = required_role(request)
    if needed is not None and role != needed:
        raise web.HTTPForbidden(reason=f"for {needed}s only")
