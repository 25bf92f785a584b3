"""Login throttling: password attempts counted in the database, so every server process shares the counts.

Each attempt counts against three counters (LoginThrottle rows):
- the account from this address (strict: `login_free_failures`, 5),
- this address, whatever the account (`login_address_free_failures`, 20: one address trying many accounts),
- the account, whatever the address (loose: `login_account_free_failures`, 100: many addresses, one account).
Past a counter's free attempts each further one makes the next wait: `login_backoff_s`, doubled per attempt, at
most `login_backoff_max_s`. An attempt during a wait is refused (HTTP 429 with Retry-After) before the password is
checked, so a flood costs no password hashing.

No one is locked out for good, and an attacker cannot lock the owner out: an address the account logged in from
within KNOWN_ADDRESS_FOR counts only against its own (account, address) counter, so guesses from elsewhere never
slow the owner down there; and every wait ends within `login_backoff_max_s`.

An attempt is counted when it starts, in one transaction holding its counters' rows, so concurrent guesses cannot
slip in between a check and its count; a success then clears its (account, address) counter and gives the address
and account counters their attempt back. A counter without failures for FORGET_AFTER starts again from zero.
Names and addresses are kept only as SHA-256 hashes: a password typed into the name field is never stored.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.persistence.models import LoginThrottle, ThrottleScope, as_utc, utcnow

#: How long an address stays known for an account after a successful login from it.
KNOWN_ADDRESS_FOR = timedelta(days=30)
#: A counter whose last failure is older than this starts again from zero.
FORGET_AFTER = timedelta(days=1)
#: The largest doubling counted (beyond it the wait is the maximum anyway).
MAX_DOUBLINGS = 40
_WHOSE = {
    ThrottleScope.PAIR: "for this account from your address",
    ThrottleScope.ADDRESS: "from your address",
    ThrottleScope.ACCOUNT: "for this account",
}


@dataclass(frozen=True)
class Refusal:
    """A login attempt refused for now: how many seconds to wait, and which counter asks for it."""

    retry_after_s: int
    scope: ThrottleScope

    @property
    def message(self) -> str:
        """Return what the login form says: why, how long to wait, and what else to do."""
        return (
            f"Too many failed logins {_WHOSE[self.scope]}; try again in {self.retry_after_s} s (each further "
            "failure doubles the wait). Forgot the password? Ask an admin for a one-time login link "
            "(`neuron-atlas users link NAME`)."
        )


def admit_login(db: Session, settings: Settings, name: str, address: str) -> Refusal | None:
    """Count a password attempt of `name` from `address` against its counters and return None, or return the
    Refusal (counting nothing) while one of them makes attempts wait."""
    now = utcnow()
    _forget_stale(db, now)
    counters = _counters(db, name, address, now)
    waits = {
        scope: as_utc(counter.blocked_until) - now
        for scope, counter in counters.items()
        if counter.blocked_until is not None and as_utc(counter.blocked_until) > now
    }
    if waits:
        scope = max(waits, key=waits.__getitem__)
        return Refusal(max(1, math.ceil(waits[scope].total_seconds())), scope)
    for scope, counter in counters.items():
        counter.failures += 1
        counter.last_failure_at = now
        beyond = counter.failures - _free_failures(settings, scope)
        if beyond >= 0:
            wait_s = min(settings.login_backoff_max_s, settings.login_backoff_s * 2 ** min(beyond, MAX_DOUBLINGS))
            counter.blocked_until = now + timedelta(seconds=wait_s)
    return None


def login_succeeded(db: Session, settings: Settings, name: str, address: str) -> None:
    """Record that an admitted attempt logged in: clear its (account, address) counter, which makes the address a
    known one, and give the other counters it was counted against their attempt back."""
    now = utcnow()
    counters = _counters(db, name, address, now)
    for scope, counter in counters.items():
        if scope == ThrottleScope.PAIR:
            counter.failures, counter.blocked_until, counter.last_success_at = 0, None, now
        else:
            counter.failures = max(0, counter.failures - 1)
            if counter.failures < _free_failures(settings, scope):
                counter.blocked_until = None


def throttle_key(scope: ThrottleScope, name: str, address: str) -> str:
    """Return the SHA-256 a counter is stored under: its scope with the name and/or address it counts."""
    parts = {ThrottleScope.PAIR: (name, address), ThrottleScope.ADDRESS: (address,), ThrottleScope.ACCOUNT: (name,)}
    return hashlib.sha256("\x00".join((scope.value, *parts[scope])).encode()).hexdigest()


def _free_failures(settings: Settings, scope: ThrottleScope) -> int:
    return {
        ThrottleScope.PAIR: settings.login_free_failures,
        ThrottleScope.ADDRESS: settings.login_address_free_failures,
        ThrottleScope.ACCOUNT: settings.login_account_free_failures,
    }[scope]


def _counters(db: Session, name: str, address: str, now: datetime) -> dict[ThrottleScope, LoginThrottle]:
    """Return the counters an attempt of `name` from `address` counts against, locked for this transaction (made
    when missing): its (account, address) one, and unless the address is a known one for the account, the others."""
    name = name.strip()
    keys = {scope: throttle_key(scope, name, address) for scope in ThrottleScope}
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = [{"scope": scope.value, "key_hash": key, "failures": 0} for scope, key in keys.items()]
    db.execute(insert(LoginThrottle).values(rows).on_conflict_do_nothing(index_elements=["key_hash"]))
    found = db.scalars(select(LoginThrottle).where(LoginThrottle.key_hash.in_(keys.values())).with_for_update())
    by_key = {row.key_hash: row for row in found}
    counters = {scope: by_key[key] for scope, key in keys.items()}
    for counter in counters.values():
        if counter.last_failure_at is not None and as_utc(counter.last_failure_at) < now - FORGET_AFTER:
            counter.failures = 0
    pair = counters[ThrottleScope.PAIR]
    if pair.last_success_at is not None and as_utc(pair.last_success_at) > now - KNOWN_ADDRESS_FOR:
        return {ThrottleScope.PAIR: pair}
    return counters


def _forget_stale(db: Session, now: datetime) -> None:
    """Delete the counters with nothing left to remember: no recent failure, wait or success."""
    db.execute(
        delete(LoginThrottle).where(
            or_(LoginThrottle.last_failure_at.is_(None), LoginThrottle.last_failure_at < now - FORGET_AFTER),
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now),
            or_(LoginThrottle.last_success_at.is_(None), LoginThrottle.last_success_at < now - KNOWN_ADDRESS_FOR),
        )
    )
