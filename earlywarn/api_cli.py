"""``earlywarn api-token add``: a new API token, printed once; the tokens file keeps only its
SHA-256 (see :mod:`earlywarn.api.tokens`). Register with ``api_cli.add_parser(sub)``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from earlywarn.api.tokens import TokensError, add_token

__all__ = ["add_parser", "cmd_token_add"]


def cmd_token_add(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Append a token to ``--tokens`` and print it."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        token = add_token(Path(args.tokens), args.name, args.role)
    except TokensError as exc:
        for problem in exc.problems:
            err.write(f"{problem}\n")
        return 2
    except ValueError as exc:
        err.write(f"{exc}\n")
        return 2
    out.write(f"{token}\n")
    err.write(
        f"token {args.name!r} ({args.role}) added to {args.tokens}; it is shown only now. "
        "Restart `earlywarn run` to use it.\n"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``api-token add``."""
    tokens = subparsers.add_parser("api-token", help="tokens of the HTTP API")
    actions = tokens.add_subparsers(dest="token_command", required=True)
    add = actions.add_parser("add", help="create a token (printed once) with a role")
    add.add_argument("--tokens", required=True, help="the tokens file (created if missing)")
    add.add_argument("--name", required=True, help="who holds it, e.g. duty-room")
    add.add_argument(
        "--role", required=True, help="centre, or enterprise:<id> for one enterprise's own data"
    )
    add.set_defaults(func=cmd_token_add)
