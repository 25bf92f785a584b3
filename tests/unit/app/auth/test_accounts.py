"""Accounts on an in-memory database: password hashes, roles, the last admin, tokens, login links, the secret key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.auth.sessions import log_in, secret_key, session_user
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
from app.persistence.models import Base


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        yield db
    engine.dispose()


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
    log_in(data, user)
    assert "csrf" not in data and session_user(session, data) is user
    assert session_user(session, {"user_id": user.id, "user_since": "2000-01-01T00:00:00+00:00"}) is None
    assert session_user(session, {"user_id": "1"}) is None and session_user(session, {}) is None


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
