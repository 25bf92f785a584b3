"""Accounts on an in-memory database: password hashes, roles, the last admin, tokens, login links, the secret key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.auth.sessions import end_sessions, log_in, log_out, secret_key, session_user
from app.auth.tokens import (
    create_api_token,
    create_login_link,
    find_api_token,
    redeem_login_link,
    revoke_api_token,
    token_hash,
)
from app.auth.users import (
    add_user,
    authenticate_password,
    ensure_first_admin,
    passwordless_admin,
    remove_user,
    set_password,
    set_role,
)
from app.core.config import Settings, default_allowed_hosts
from app.core.errors import AtlasError
from app.persistence.models import Base, LoginSession, utcnow


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        yield db
    engine.dispose()


@pytest.mark.slow
def test_passwords_are_argon2_hashed_and_checked(session: Session) -> None:
    user = add_user(session, "alice", "editor", "a long passphrase")
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert "a long passphrase" not in user.password_hash
    assert authenticate_password(session, "alice", "a long passphrase") is user
    assert authenticate_password(session, "alice", "a long passphrasf") is None
    assert authenticate_password(session, "nobody", "a long passphrase") is None
    add_user(session, "bob", "viewer")
    assert authenticate_password(session, "bob", "") is None  # no password: links and tokens only
    with pytest.raises(AtlasError, match="use at least 8"):
        add_user(session, "carol", "editor", "short")
    with pytest.raises(AtlasError, match="already a user 'alice'"):
        add_user(session, "alice", "viewer")
    with pytest.raises(AtlasError, match="is not a usable user name"):
        add_user(session, "two words", "viewer")
    with pytest.raises(AtlasError, match="is not a role"):
        add_user(session, "dave", "owner")
    set_password(session, "alice", "another passphrase")
    assert authenticate_password(session, "alice", "another passphrase") is user


def test_the_last_admin_stays(session: Session) -> None:
    assert ensure_first_admin(session) is not None and ensure_first_admin(session) is None
    assert passwordless_admin(session) is not None
    with pytest.raises(AtlasError, match="is the last admin"):
        remove_user(session, "admin")
    with pytest.raises(AtlasError, match="is the last admin"):
        set_role(session, "admin", "editor")
    add_user(session, "root", "admin", "another long one")
    remove_user(session, "admin")
    assert passwordless_admin(session) is None


def test_tokens_are_stored_hashed_and_revocable(session: Session) -> None:
    user = add_user(session, "alice", "editor")
    row, token = create_api_token(session, user, "script")
    assert row.token_hash == token_hash(token) != token and token.startswith("na_") and len(token) > 40
    found = find_api_token(session, token)
    assert found is not None and found.user is user
    assert find_api_token(session, token + "x") is None
    revoke_api_token(session, row.id)
    assert find_api_token(session, token) is None
    with pytest.raises(AtlasError, match="there is no API token 99"):
        revoke_api_token(session, 99)


def test_a_login_link_works_once_and_expires(session: Session) -> None:
    user = add_user(session, "alice", "editor")
    token = create_login_link(session, user)
    assert redeem_login_link(session, token) is user
    assert redeem_login_link(session, token) is None
    stale = create_login_link(session, user, lifetime=timedelta(seconds=-1))
    assert redeem_login_link(session, stale) is None
    assert redeem_login_link(session, "na_unknown") is None


def test_a_session_belongs_to_one_user_for_good(session: Session) -> None:
    user = add_user(session, "alice", "editor")
    data: dict[str, object] = {"csrf": "old"}
    log_in(session, data, user)
    assert "csrf" not in data and session_user(session, data) is user
    assert session_user(session, {"user_id": user.id, "user_since": "2000-01-01T00:00:00+00:00"}) is None
    assert session_user(session, {"user_id": "1"}) is None and session_user(session, {}) is None
    stored = session.scalars(select(LoginSession)).one()
    assert stored.token_hash == token_hash(str(data["login"])) and str(data["login"]) not in stored.token_hash


def test_logout_ends_one_session_and_new_credentials_end_them_all(session: Session) -> None:
    user = add_user(session, "alice", "editor", "a long passphrase")
    laptop: dict[str, object] = {}
    phone: dict[str, object] = {}
    log_in(session, laptop, user)
    log_in(session, phone, user)
    copied = dict(laptop)  # a cookie copied before logging out
    log_out(session, laptop)
    assert laptop == {} and session_user(session, copied) is None and session_user(session, phone) is user
    set_password(session, "alice", "another passphrase")
    assert session_user(session, phone) is None
    log_in(session, phone, user)
    set_role(session, "alice", "editor")  # no change: the session stays
    assert session_user(session, phone) is user
    set_role(session, "alice", "viewer")
    assert session_user(session, phone) is None
    log_in(session, laptop, user)
    log_in(session, phone, user)
    assert end_sessions(session, user) == 2
    assert session_user(session, laptop) is None and session_user(session, phone) is None


def test_an_expired_session_logs_in_no_more(session: Session) -> None:
    user = add_user(session, "alice", "editor")
    data: dict[str, object] = {}
    log_in(session, data, user)
    session.scalars(select(LoginSession)).one().expires_at = utcnow() - timedelta(seconds=1)
    assert session_user(session, data) is None
    log_in(session, {}, user)  # a new login clears the user's expired sessions away
    assert len(session.scalars(select(LoginSession)).all()) == 1


def test_a_new_login_link_revokes_the_older_and_a_password_revokes_all(session: Session) -> None:
    admin = ensure_first_admin(session)
    assert admin is not None
    first = create_login_link(session, admin)
    second = create_login_link(session, admin)
    assert redeem_login_link(session, first) is None
    other = add_user(session, "bob", "viewer")
    bobs = create_login_link(session, other)  # another account's link leaves the admin's alone
    set_password(session, "admin", "a long passphrase")
    assert redeem_login_link(session, second) is None
    assert redeem_login_link(session, bobs) is other


def test_the_secret_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    settings = Settings.for_data_dir(tmp_path)
    key = secret_key(settings)
    path = tmp_path / "secret_key"
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key(settings) == key
    os.chmod(path, 0o644)
    with pytest.raises(AtlasError, match="can be read by other users"):
        secret_key(settings)
    assert secret_key(Settings.for_data_dir(tmp_path, secret_key="s" * 40)) == "s" * 40


def test_default_hosts_follow_the_bound_address() -> None:
    assert default_allowed_hosts("127.0.0.1") == ("localhost", "127.0.0.1", "[::1]")
    assert default_allowed_hosts("10.0.0.5") == ("10.0.0.5",)
    assert default_allowed_hosts("atlas.lab") == ("atlas.lab",)
    assert {"localhost", "127.0.0.1"} < set(default_allowed_hosts("0.0.0.0"))
    assert Settings.from_env({"NEURON_ATLAS_ALLOWED_HOSTS": "Atlas.Lab, *.lab.org"}).trusted_hosts == (
        "atlas.lab",
        "*.lab.org",
    )
    with pytest.raises(AtlasError, match="a wildcard may only start a name"):
        Settings.from_env({"NEURON_ATLAS_ALLOWED_HOSTS": "atlas.*"})
