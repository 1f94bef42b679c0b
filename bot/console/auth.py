"""Staff accounts and console sessions, in Redis.

Passwords are hashed with scrypt (the standard library's, memory-hard); sessions are random
tokens in an HttpOnly, SameSite=Strict cookie, stored server-side with a TTL, each with its
own CSRF token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import List, Tuple

from redis.asyncio import Redis

from bot import keys

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD = 10
# Staff work the queue; supervisors also see the reports, manage staff accounts and end
# other members' sessions. An account without a role (made before roles existed) is staff.
STAFF, SUPERVISOR = "staff", "supervisor"
ROLES = (STAFF, SUPERVISOR)


class AuthError(ValueError):
    """A staff name or password that cannot be used; the message says why."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        salt_bytes = base64.b64decode(salt)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(password.encode(), salt=salt_bytes, **_SCRYPT)
    return hmac.compare_digest(actual, expected)


# Compared against when the name is unknown, so a login takes as long either way.
_DUMMY = hash_password("not-a-real-password")

# Login attempts allowed per window before 429: for one account from one address (a guesser
# at one account), from one address (a guesser at many), and for one account from anywhere
# (a distributed guesser; high, so that nobody can lock a colleague out with a few tries).
PAIR_ATTEMPTS = 5
ADDRESS_ATTEMPTS = 20
ACCOUNT_ATTEMPTS = 100
FAILURE_WINDOW_S = 900
# A browser that signed in to an account before carries a device cookie for it (OWASP's
# "device cookies" against slow and distributed guessing): its attempts are counted for that
# device alone, so a guesser spread over many addresses, who exhausts the account-wide
# limit, does not lock the officer out of the console (second live attack: 21 addresses x 6
# guesses did). Trust lasts this long after the last sign-in from the browser.
DEVICE_TTL_S = 90 * 24 * 3600


class StaffBusy(Exception):
    """Another supervisor's change to staff accounts holds the lock."""


class Throttled(Exception):
    """Too many failed logins; ``retry_after`` seconds until the next try is accepted."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Session:
    token: str
    staff: str
    csrf: str
    # The device cookie to set (renewed at each sign-in); empty for a session read back.
    device: str = ""
    # The account's role as the session was read (read afresh on every request, so a
    # change of role applies to sessions already open).
    role: str = STAFF
    # The agency whose console this is ("" in a single-agency deployment).
    agency: str = ""


# A device cookie as Beacon makes them (secrets.token_urlsafe(32)); anything else is ignored.
_DEVICE = re.compile(r"[A-Za-z0-9_-]{43}")


def _device_id(device: str) -> str:
    # Only a hash is stored: a copy of Redis does not hand out trusted cookies.
    return hashlib.sha256(device.encode()).hexdigest()[:32]


class StaffStore:
    def __init__(self, redis: Redis, session_ttl: int,
                 scope: keys.AgencyKeys = keys.SINGLE) -> None:
        self.redis = redis
        self.session_ttl = session_ttl
        # The agency whose accounts these are: each agency has its own staff, names and
        # login throttles (bot.agencies); a session names its agency.
        self.scope = scope

    async def add(self, name: str, password: str, role: str | None = None) -> None:
        """Create an account or set a new password; ``role`` None keeps an existing
        account's role (a new one is staff)."""
        if not NAME.match(name):
            raise AuthError("names are 2-32 lower-case letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"passwords need at least {MIN_PASSWORD} characters")
        if role is not None and role not in ROLES:
            raise AuthError(f"roles are {', '.join(ROLES)}")
        fields = {"password": hash_password(password), "created_at": time.time()}
        if role is not None:
            fields["role"] = role
        await self.redis.hset(self.scope.staff(name), mapping=fields)
        await self.redis.sadd(self.scope.staff_index, name)

    async def names(self) -> List[str]:
        return sorted(await self.redis.smembers(self.scope.staff_index))

    async def role(self, name: str, scope: keys.AgencyKeys | None = None) -> str | None:
        """The account's role; None when there is no such account."""
        stored = await self.redis.hmget((scope or self.scope).staff(name), ["password", "role"])
        if stored[0] is None:
            return None
        return stored[1] if stored[1] in ROLES else STAFF

    async def set_role(self, name: str, role: str) -> bool:
        """Give an existing account a role; False when there is no such account."""
        if role not in ROLES:
            raise AuthError(f"roles are {', '.join(ROLES)}")
        # HSET only if the account still exists: never resurrect a removed account.
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self.scope.staff(name))
            if not await pipe.exists(self.scope.staff(name)):
                await pipe.unwatch()
                return False
            pipe.multi()
            pipe.hset(self.scope.staff(name), "role", role)
            await pipe.execute()
        return True

    @contextlib.asynccontextmanager
    async def one_change_at_a_time(self, wait_s: float = 5.0):
        """Hold the staff-change lock (every replica shares it) while checking and changing
        accounts: two supervisors demoting or removing each other at once left no
        supervisor, and adding one name twice at once replaced the first password (live
        attack). Raises StaffBusy when another change holds it for longer than ``wait_s``."""
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait_s
        while not await self.redis.set(self.scope.staff_change_lock, token, nx=True, px=10_000):
            if time.monotonic() > deadline:
                raise StaffBusy("another change to staff accounts is in progress")
            await asyncio.sleep(0.05)
        try:
            yield
        finally:
            if await self.redis.get(self.scope.staff_change_lock) == token:
                await self.redis.delete(self.scope.staff_change_lock)

    async def members(self) -> List[dict]:
        """Every account with its role."""
        return [{"name": name, "role": await self.role(name) or STAFF}
                for name in await self.names()]

    async def login(self, name: str, password: str, address: str = "",
                    device: str = "") -> Session | None:
        """A new session, or None for a wrong name or password. Raises Throttled after too
        many failures for this account or this address (checked before any hashing, which
        runs off the event loop: scrypt takes tens of milliseconds on purpose). ``device``
        is the browser's device cookie: if it is trusted for this account, only its own
        failures count (see DEVICE_TTL_S)."""
        account = name if NAME.match(name) else "-"
        # The cookie names the browser, not the account: a shared desk browser is trusted
        # for each officer who signed in on it (found by the live attack: one cookie per
        # account let the last sign-in replace the others').
        device = device if _DEVICE.fullmatch(device or "") else ""
        if await self._trusted(account, device):
            counters = [self.scope.login_failures("device", f"{account}|{_device_id(device)}")]
            limits: Tuple[int, ...] = (PAIR_ATTEMPTS,)
        else:
            # The address's count is the deployment's, not the agency's: one address gets
            # its 20 guesses in all, not 20 at each agency (found by the live attack).
            counters = [self.scope.login_failures("pair", f"{account}|{address or '-'}"),
                        keys.SINGLE.login_failures("address", address or "-"),
                        self.scope.login_failures("account", account)]
            limits = (PAIR_ATTEMPTS, ADDRESS_ATTEMPTS, ACCOUNT_ATTEMPTS)
        # Each attempt is counted before the password is checked (INCR is atomic): checking
        # a count and adding to it afterwards let 200 simultaneous guesses all through.
        await self._reserve(list(zip(counters, limits, strict=True)))
        stored = (await self.redis.hget(self.scope.staff(name), "password")
                  if NAME.match(name) else None)
        ok = await asyncio.get_running_loop().run_in_executor(
            None, check_password, password, stored or _DUMMY)
        if not ok or stored is None:
            return None
        # A success gives its attempt back and clears this account's tries from here.
        await self.redis.delete(counters[0])
        for counter in counters[1:]:
            await self.redis.decr(counter)
        device = device or secrets.token_urlsafe(32)
        await self._trust(name, device)
        session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32), device,
                          agency=self.scope.agency)
        await self.redis.hset(keys.session(session.token),
                              mapping={"staff": name, "csrf": session.csrf,
                                       "agency": self.scope.agency})
        # An absolute lifetime: a session in use does not slide on forever.
        await self.redis.expire(keys.session(session.token), self.session_ttl)
        await self.redis.sadd(self.scope.staff_sessions(name), session.token)
        await self.redis.expire(self.scope.staff_sessions(name), self.session_ttl)
        return session

    async def _trusted(self, account: str, device: str) -> bool:
        if not device or len(device) > 100 or account == "-":
            return False
        until = await self.redis.hget(self.scope.staff_devices(account), _device_id(device))
        return until is not None and float(until) > time.time()

    async def _trust(self, name: str, device: str) -> None:
        key = self.scope.staff_devices(name)
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, _device_id(device), now + DEVICE_TTL_S)
            pipe.expire(key, DEVICE_TTL_S)
            await pipe.execute()
        # Forget browsers whose trust ran out (the hash holds one field per browser).
        stale = [field for field, until in (await self.redis.hgetall(key)).items()
                 if float(until) <= now]
        if stale:
            await self.redis.hdel(key, *stale)

    async def _reserve(self, limits: List[Tuple[str, int]]) -> None:
        for counter, limit in limits:
            count = await self.redis.incr(counter)
            await self.redis.expire(counter, FAILURE_WINDOW_S, nx=True)
            if count > limit:
                raise Throttled(max(1, int(await self.redis.ttl(counter))))

    async def session(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        data = await self.redis.hgetall(keys.session(token))
        if not data:
            return None
        # Any agency's session: the console serves each its own agency (the caller checks
        # that the agency is still in the deployment).
        agency = data.get("agency", "")
        role = await self.role(data["staff"], keys.AgencyKeys(agency))
        if role is None:
            return None  # the account was removed
        return Session(token, data["staff"], data["csrf"], role=role, agency=agency)

    async def logout(self, token: str) -> None:
        await self.redis.delete(keys.session(token))

    async def revoke(self, name: str) -> int:
        """End every session of a staff member at once; returns how many there were."""
        tokens = await self.redis.smembers(self.scope.staff_sessions(name))
        if tokens:
            await self.redis.delete(*[keys.session(t) for t in tokens])
        await self.redis.delete(self.scope.staff_sessions(name))
        return len(tokens)

    async def remove(self, name: str) -> bool:
        """Delete a staff account and end its sessions; False when there was none."""
        await self.revoke(name)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.scope.staff(name))
            pipe.delete(self.scope.staff_devices(name))
            removed, _ = await pipe.execute()
        await self.redis.srem(self.scope.staff_index, name)
        return bool(removed)
