"""The login throttle on an in-memory database, with a clock the tests move: free attempts, doubling waits up to
the maximum, the three counters, known addresses, refunds on success, forgetting, hashed keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.auth import throttle
from app.auth.throttle import FORGET_AFTER, Refusal, admit_login, login_succeeded
from app.core.config import Settings
from app.core.errors import AtlasError
from app.persistence.models import Base, LoginThrottle, ThrottleScope, utcnow


class Clock:
    """A settable stand-in for utcnow."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moving = Clock()
    monkeypatch.setattr(throttle, "utcnow", moving)
    return moving


@pytest.fixture
def db() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def limits(tmp_path: Path, **overrides: object) -> Settings:
    """Return settings with small free-attempt counts: 3 per pair, 6 per address, 9 per account; waits 1 s to 8 s."""
    values: dict[str, object] = {
        "login_free_failures": 3,
        "login_address_free_failures": 6,
        "login_account_free_failures": 9,
        "login_backoff_s": 1.0,
        "login_backoff_max_s": 8.0,
    }
    return Settings.for_data_dir(tmp_path, **{**values, **overrides})


def test_the_wait_doubles_past_the_free_attempts_up_to_the_maximum(db: Session, clock: Clock, tmp_path: Path) -> None:
    settings = limits(tmp_path, login_address_free_failures=50, login_account_free_failures=50)
    assert [admit_login(db, settings, "alice", "10.0.0.1") for _ in range(3)] == [None, None, None]
    waits = []
    for _ in range(6):
        refusal = admit_login(db, settings, "alice", "10.0.0.1")
        assert isinstance(refusal, Refusal) and refusal.scope == ThrottleScope.PAIR
        assert admit_login(db, settings, "alice", "10.0.0.1") == refusal  # refused again: nothing more counted
        waits.append(refusal.retry_after_s)
        clock.advance(refusal.retry_after_s)
        assert admit_login(db, settings, "alice", "10.0.0.1") is None
    assert waits == [1, 2, 4, 8, 8, 8]
    assert "try again in 8 s" in admit_login(db, settings, "alice", "10.0.0.1").message  # type: ignore[union-attr]
    assert admit_login(db, settings, "alice", "10.0.0.2") is None  # another address: its own pair counter


def test_a_success_clears_the_pair_and_the_wait_is_forgotten_after_a_quiet_day(
    db: Session, clock: Clock, tmp_path: Path
) -> None:
    settings = limits(tmp_path)
    for _ in range(2):
        assert admit_login(db, settings, "alice", "10.0.0.1") is None
    login_succeeded(db, settings, "alice", "10.0.0.1")
    assert [admit_login(db, settings, "alice", "10.0.0.1") for _ in range(3)] == [None, None, None]
    assert isinstance(admit_login(db, settings, "alice", "10.0.0.1"), Refusal)
    clock.advance(FORGET_AFTER.total_seconds() + 1)
    assert [admit_login(db, settings, "alice", "10.0.0.1") for _ in range(3)] == [None, None, None]


def test_one_address_trying_many_accounts_waits(db: Session, clock: Clock, tmp_path: Path) -> None:
    settings = limits(tmp_path)
    for number in range(6):
        assert admit_login(db, settings, f"user{number}", "10.0.0.9") is None
    refusal = admit_login(db, settings, "user6", "10.0.0.9")
    assert isinstance(refusal, Refusal) and refusal.scope == ThrottleScope.ADDRESS
    assert "from your address" in refusal.message
    assert admit_login(db, settings, "user6", "10.0.0.10") is None


def test_many_addresses_on_one_account_never_lock_its_owner_out_where_they_logged_in(
    db: Session, clock: Clock, tmp_path: Path
) -> None:
    settings = limits(tmp_path)
    assert admit_login(db, settings, "alice", "192.168.1.5") is None
    login_succeeded(db, settings, "alice", "192.168.1.5")  # the owner's usual address is now a known one
    for number in range(9):  # a botnet: one guess from each address, far below each pair's limit
        assert admit_login(db, settings, "alice", f"203.0.113.{number}") is None
    refusal = admit_login(db, settings, "alice", "198.51.100.1")
    assert isinstance(refusal, Refusal) and refusal.scope == ThrottleScope.ACCOUNT
    assert "for this account;" in refusal.message
    assert admit_login(db, settings, "alice", "192.168.1.5") is None  # the owner, at home, is let in


def test_logins_that_succeed_give_the_address_its_attempts_back(db: Session, clock: Clock, tmp_path: Path) -> None:
    settings = limits(tmp_path)
    for number in range(20):  # a lab behind one address: every member's first login counts, then is refunded
        assert admit_login(db, settings, f"member{number}", "10.1.1.1") is None
        login_succeeded(db, settings, f"member{number}", "10.1.1.1")
    address = db.scalars(select(LoginThrottle).where(LoginThrottle.scope == ThrottleScope.ADDRESS.value)).one()
    assert address.failures == 0 and address.blocked_until is None


def test_counters_keep_names_and_addresses_only_as_hashes(db: Session, clock: Clock, tmp_path: Path) -> None:
    settings = limits(tmp_path)
    admit_login(db, settings, "my secret password", "10.0.0.1")
    rows = db.scalars(select(LoginThrottle)).all()
    assert {row.scope for row in rows} == {"pair", "address", "account"}
    assert all("secret" not in row.key_hash and "10.0.0.1" not in row.key_hash for row in rows)


def test_the_throttle_settings_come_from_the_environment_and_are_checked() -> None:
    settings = Settings.from_env(
        {
            "NEURON_ATLAS_LOGIN_FREE_FAILURES": "4",
            "NEURON_ATLAS_LOGIN_ADDRESS_FREE_FAILURES": "8",
            "NEURON_ATLAS_LOGIN_ACCOUNT_FREE_FAILURES": "16",
            "NEURON_ATLAS_LOGIN_BACKOFF_S": "0.5",
            "NEURON_ATLAS_LOGIN_BACKOFF_MAX_S": "60",
        }
    )
    assert (settings.login_free_failures, settings.login_address_free_failures) == (4, 8)
    assert settings.login_account_free_failures == 16
    assert (settings.login_backoff_s, settings.login_backoff_max_s) == (0.5, 60)
    with pytest.raises(AtlasError, match="LOGIN_BACKOFF_MAX_S \\(1\\) is below NEURON_ATLAS_LOGIN_BACKOFF_S \\(5\\)"):
        Settings.from_env({"NEURON_ATLAS_LOGIN_BACKOFF_S": "5", "NEURON_ATLAS_LOGIN_BACKOFF_MAX_S": "1"})
    with pytest.raises(AtlasError, match="LOGIN_FREE_FAILURES='0' is too small"):
        Settings.from_env({"NEURON_ATLAS_LOGIN_FREE_FAILURES": "0"})
