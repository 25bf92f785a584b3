"""`neuron-atlas tokens`: API tokens for scripts (`Authorization: Bearer …`): create (shown once), list, revoke."""

from __future__ import annotations

import argparse


def run_create(args: argparse.Namespace) -> int:
    """Create a token for a user; print its id, then the token itself as the last line."""
    from app.auth.tokens import create_api_token
    from app.auth.users import get_user
    from app.cli.accounts import account_session
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        row, token = create_api_token(session, get_user(session, args.user), args.name or "")
        print(f"token {row.id} ({row.name}) for {args.user}; send it as `Authorization: Bearer TOKEN`.")
        print("It is shown only now (only its hash is stored); revoke it with `neuron-atlas tokens revoke ID`.")
        print(token)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print the tokens (of one user, or everyone's): id, user, label, created, last used, revoked."""
    from app.auth.tokens import list_api_tokens
    from app.auth.users import get_user
    from app.cli.accounts import account_session
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        rows = list_api_tokens(session, get_user(session, args.user) if args.user else None)
        if not rows:
            print("no API tokens; create one with `neuron-atlas tokens create USER --name LABEL`")
        for row in rows:
            used = f"used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
            print(f"{row.id:>5}  {row.user.name:<24} {row.name:<30} {used:<22} {state}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke a token by id; requests with it get 401 from then on."""
    from app.auth.tokens import revoke_api_token
    from app.cli.accounts import account_session
    from app.core.config import Settings

    with account_session(Settings.from_env()) as session:
        row = revoke_api_token(session, args.id)
        print(f"revoked token {row.id} ({row.name}) of {row.user.name}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas tokens` and its subcommands."""
    parser = subparsers.add_parser("tokens", help="API tokens for scripts: create (shown once), list, revoke")
    commands = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")

    create = commands.add_parser("create", help="create a token for a user; the token is the last line printed")
    create.add_argument("user", metavar="NAME", help="the user the token acts as")
    create.add_argument("--name", metavar="LABEL", help="what the token is for, e.g. 'nightly upload script'")
    create.set_defaults(func=run_create)

    listing = commands.add_parser("list", help="list tokens (ids, users, labels, last use, revoked or live)")
    listing.add_argument("user", metavar="NAME", nargs="?", help="only this user's tokens")
    listing.set_defaults(func=run_list)

    revoke = commands.add_parser("revoke", help="revoke a token by its id (see `tokens list`)")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(func=run_revoke)
