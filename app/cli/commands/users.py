"""`neuron-atlas users`: add, list and remove accounts, change a role or password, print a one-time login link,
end an account's login sessions."""

from __future__ import annotations

import argparse
import getpass
import sys

from app.persistence.roles import Role

ROLES = [role.value for role in Role]


def read_password(args: argparse.Namespace) -> str | None:
    """Return the new password: stdin's first line (--password-stdin), None (--no-password), else asked twice."""
    from app.core.errors import AtlasError

    if args.no_password:
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if password and getpass.getpass("Again: ") != password:
            raise AtlasError("the two passwords differ; run the command again and type the same password twice")
    if not password:
        raise AtlasError("the password is empty; type one, or pass --no-password for a link- or token-only account")
    return password


def run_add(args: argparse.Namespace) -> int:
    """Add an account."""
    from app.auth.users import add_user
    from app.cli.accounts import account_session
    from app.core.config import Settings

    password = read_password(args)
    with account_session(Settings.from_env()) as session:
        user = add_user(session, args.name, args.role, password)
        print(f"added {user.role} {user.name}" + ("" if password else " (no password: give them a `users link`)"))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print every account: name, role, whether it has a password, when it was made."""
    from app.auth.users import list_users
    from app.cli.accounts import account_session
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        users = list_users(session)
        if not users:
            print("no users yet; `neuron-atlas serve` makes an admin, or `neuron-atlas users add NAME --role admin`")
        for user in users:
            password = "password" if user.password_hash else "no password"
            print(f"{user.name:<24} {user.role:<7} {password:<12} since {user.created_at:%Y-%m-%d %H:%M}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Remove an account with its tokens; what it owns stays, without an owner (admins may change it)."""
    from app.auth.users import remove_user
    from app.cli.accounts import account_session
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        user = remove_user(session, args.name)
        print(f"removed {user.name}; their runs and jobs stay, now without an owner (only admins may change them)")
    return 0


def run_role(args: argparse.Namespace) -> int:
    """Give an account another role."""
    from app.auth.users import set_role
    from app.cli.accounts import account_session
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        user = set_role(session, args.name, args.role)
        print(f"{user.name}'s role is now {user.role} (a change logs them out of every browser)")
    return 0


def run_password(args: argparse.Namespace) -> int:
    """Set or remove an account's password."""
    from app.auth.users import set_password
    from app.cli.accounts import account_session
    from app.core.config import Settings

    password = read_password(args)
    with account_session(Settings.from_env()) as session:
        user = set_password(session, args.name, password)
        print(f"{user.name} " + ("has a new password" if password else "has no password now (links and tokens only)"))
        print("  their browsers are logged out and their unused login links revoked")
    return 0


def run_logout(args: argparse.Namespace) -> int:
    """End every login session of an account (copied cookies included); API tokens stay (`tokens revoke`)."""
    from app.auth.sessions import end_sessions
    from app.auth.users import get_user
    from app.cli.accounts import account_session
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        user = get_user(session, args.name)
        ended = end_sessions(session, user)
        print(
            f"ended {ended} login session{'s' if ended != 1 else ''} of {user.name}; their API tokens stay live "
            f"(`neuron-atlas tokens list {user.name}`, then `neuron-atlas tokens revoke ID`)"
        )
    return 0


def run_link(args: argparse.Namespace) -> int:
    """Print a one-time login link for an account (valid for 24 hours), as its last line."""
    from app.auth.users import get_user
    from app.cli.accounts import account_session, login_link
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        user = get_user(session, args.name)
        url = login_link(session, user, args.url.rstrip("/"))
    print(f"one-time login link for {user.name} (works once, within 24 hours):", file=sys.stderr)
    print(url)
    return 0


def _password_options(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    choice.add_argument("--no-password", action="store_true", help="no password: log in by link or token only")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas users` and its subcommands."""
    parser = subparsers.add_parser("users", help="add, list and remove accounts (viewer, editor, admin)")
    commands = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = commands.add_parser("add", help="add an account (asks for its password unless told otherwise)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES, help="viewer: reads; editor: also uploads; admin: all")
    _password_options(add)
    add.set_defaults(func=run_add)

    commands.add_parser("list", help="list the accounts").set_defaults(func=run_list)

    remove = commands.add_parser("remove", help="remove an account and its tokens (what it owns is kept)")
    remove.add_argument("name")
    remove.set_defaults(func=run_remove)

    role = commands.add_parser("role", help="give an account another role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(func=run_role)

    password = commands.add_parser("password", help="set (or with --no-password remove) an account's password")
    password.add_argument("name")
    _password_options(password)
    password.set_defaults(func=run_password)

    link = commands.add_parser("link", help="print a one-time login link for an account (valid 24 hours)")
    link.add_argument("name")
    link.add_argument("--url", default="http://127.0.0.1:8000", help="the dashboard's address (default: %(default)s)")
    link.set_defaults(func=run_link)

    logout = commands.add_parser("logout", help="end every login session of an account, in every browser")
    logout.add_argument("name")
    logout.set_defaults(func=run_logout)
