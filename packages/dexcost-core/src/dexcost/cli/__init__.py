"""The ``dexcost`` command: read the local store without writing a line of code.

``dexcost tasks``, ``report [VIEW]``, ``statement``, ``reconcile``, ``revenue import``,
``adjust``, ``export`` and ``demo-data``; each takes ``--db PATH``, ``--tz ZONE`` and
``--json``. Exit status: 0 on success, 2 for a usage error or a store that cannot
be read (the message says what to do).
"""

from __future__ import annotations

import sys
from pathlib import Path

from dexcost.insights import Period
from dexcost.store import StoreError, StoreNotFoundError, connect_readonly, default_buffer_path
from dexcost.store._connect import open_write_connection

from ._insight_cmds import CommandError
from ._parser import build_parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        args.period = Period.parse(
            getattr(args, "since", None), getattr(args, "until", None), tz=args.tz
        )
    except ValueError as exc:
        print(f"dexcost {args.command}: {exc}", file=sys.stderr)
        return 2
    args.since_given = getattr(args, "since", None) is not None
    db = Path(args.db).expanduser() if args.db else default_buffer_path()
    args.db_path = db
    if getattr(args, "creates", False):
        return int(args.run(args, sys.stdout))
    try:
        conn = open_write_connection(db) if getattr(args, "writes", False) else connect_readonly(db)
    except StoreNotFoundError:
        print(
            f"dexcost: there is no dexcost store at {db}.\n"
            "Costs are stored there once an app runs with dexcost.init(). To read another "
            "store, pass --db PATH or set DEXCOST_BUFFER_PATH.",
            file=sys.stderr,
        )
        return 2
    except StoreError as exc:
        print(f"dexcost: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = args.run(conn, args, sys.stdout)
        sys.stdout.flush()
        return code
    except CommandError as exc:
        print(f"dexcost {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``dexcost export | head``): stop quietly.
        _silence_stdout()
        return 1
    finally:
        conn.close()


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
