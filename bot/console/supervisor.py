"""The supervisors' staff management: list accounts with their roles, add one, set a role,
end a member's sessions, remove an account. Every route is :func:`supervisor_only`; each
change is audited in the console's audit log. The last supervisor cannot be demoted or
removed, so the console never loses its way to manage itself."""

from __future__ import annotations

import contextlib

import aiohttp_jinja2
from aiohttp import web

from bot.console.app import _json, agency_of, services_of, session_of, staff_store
from bot.console.auth import NAME, ROLES, STAFF, SUPERVISOR, AuthError, StaffBusy
from bot.console.roles import supervisor_only

routes = web.RouteTableDef()


def _member(request: web.Request) -> str:
    name = request.match_info["name"]
    if not NAME.match(name):
        raise web.HTTPBadRequest(reason="not a staff name")
    return name


async def _audit(request: web.Request, action: str, detail: str) -> None:
    await services_of(request).audit(agency_of(request).console_log, session_of(request).staff,
                                     action, detail)


@contextlib.asynccontextmanager
async def _one_change(request: web.Request):
    """The check and the write of one change to staff accounts, as one step (409 when
    another change holds the lock for long)."""
    try:
        async with staff_store(request).one_change_at_a_time():
            yield
    except StaffBusy as exc:
        raise web.HTTPConflict(reason=str(exc)) from None


async def _keep_a_supervisor(request: web.Request, name: str) -> None:
    """409 when ``name`` is the only supervisor left."""
    members = await staff_store(request).members()
    supervisors = [m["name"] for m in members if m["role"] == SUPERVISOR]
    if supervisors == [name]:
        raise web.HTTPConflict(reason="the last supervisor stays a supervisor")


@routes.get("/staff", name="staff_page")
@supervisor_only
async def staff_page(request: web.Request) -> web.Response:
    session = session_of(request)
    return aiohttp_jinja2.render_template("staff.html", request, {
        "staff": session.staff, "csrf": session.csrf, "roles": ROLES,
        "department": agency_of(request).name})


@routes.get("/api/staff/members", name="api_members")
@supervisor_only
async def api_members(request: web.Request) -> web.Response:
    return web.json_response({"members": await staff_store(request).members()})


@routes.post("/api/staff/members", name="api_member_add")
@supervisor_only
async def api_member_add(request: web.Request) -> web.Response:
    body = await _json(request)
    name, password = body.get("name"), body.get("password")
    role = body.get("role", STAFF)
    if not isinstance(name, str) or not isinstance(password, str) or role not in ROLES:
        raise web.HTTPBadRequest(reason="name, password and a role are needed")
    store = staff_store(request)
    async with _one_change(request):
        if await store.role(name) is not None:
            raise web.HTTPConflict(reason="that account exists")
        try:
            await store.add(name, password, role)
        except AuthError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from None
    await _audit(request, "staff_added", f"{name} ({role})")
    return web.json_response({"ok": True, "name": name, "role": role})


@routes.post("/api/staff/members/{name}/role", name="api_member_role")
@supervisor_only
async def api_member_role(request: web.Request) -> web.Response:
    name = _member(request)
    role = (await _json(request)).get("role")
    if role not in ROLES:
        raise web.HTTPBadRequest(reason=f"roles are {', '.join(ROLES)}")
    async with _one_change(request):
        if role != SUPERVISOR:
            await _keep_a_supervisor(request, name)
        if not await staff_store(request).set_role(name, role):
            raise web.HTTPNotFound(reason="no such staff member")
    await _audit(request, "staff_role", f"{name}: {role}")
    return web.json_response({"ok": True, "name": name, "role": role})


@routes.post("/api/staff/members/{name}/revoke", name="api_member_revoke")
@supervisor_only
async def api_member_revoke(request: web.Request) -> web.Response:
    name = _member(request)
    count = await staff_store(request).revoke(name)
    await services_of(request).presence.set_off_duty(name, agency_of(request).keys)
    await _audit(request, "sessions_revoked", f"{name}: {count}")
    return web.json_response({"ok": True, "name": name, "sessions_ended": count})


@routes.post("/api/staff/members/{name}/remove", name="api_member_remove")
@supervisor_only
async def api_member_remove(request: web.Request) -> web.Response:
    name = _member(request)
    async with _one_change(request):
        await _keep_a_supervisor(request, name)
        if not await staff_store(request).remove(name):
            raise web.HTTPNotFound(reason="no such staff member")
    await services_of(request).presence.set_off_duty(name, agency_of(request).keys)
    await _audit(request, "staff_removed", name)
    return web.json_response({"ok": True, "name": name})
