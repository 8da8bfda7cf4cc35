"""The command line: ``python -m eventlab demo`` and friends, mirroring the Python API.

    python -m eventlab demo
    python -m eventlab import data/receipt/receipt.xes.gz --db receipt.duckdb
    python -m eventlab info receipt.duckdb
    python -m eventlab sql --db receipt.duckdb "select type, count(*) from events group by 1"
    python -m eventlab export --db receipt.duckdb receipt-parquet/
    python -m eventlab copy postgresql://ada:secret@db/log local.duckdb

Each command mirrors one function, its options that function's arguments:
``import`` is ``el.import_log`` (``--attributes a,b`` is ``attributes=``), ``info``
``el.info``, ``export`` ``store.export_parquet`` (``--partition-by`` is
``partition_by=``), ``sql`` ``store.sql`` and ``copy`` ``el.copy``.

Wherever a command takes a DuckDB file it also takes a PostgreSQL URL
(``postgresql://user:password@host:5432/db``, with ``?schema=name`` for a log in
another schema than ``public``); passwords are never printed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.db)


# -- the log as data: import, info, export, sql -----------------------------------------

def _open(path: str, read_only: bool = False):
    from .store import connect

    return connect(path, read_only=read_only)


def _name(target: str) -> str:
    from .store import describe

    return describe(target)


def _failing(run):
    """Report an eventlab error as one line on stderr and exit 1 (no traceback)."""
    def wrapped(args: argparse.Namespace) -> None:
        from .errors import EventlabError

        try:
            run(args)
        except (EventlabError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):   # the reader went away (| head)
                raise SystemExit(0) from None
            raise SystemExit(f"error: {exc}") from None
    return wrapped


@_failing
def _import(args: argparse.Namespace) -> None:
    from .importers import import_log

    with _open(args.db) as store:
        summary = import_log(store, args.log, case=args.case, activity=args.activity,
                             timestamp=args.timestamp, attributes=args.attributes,
                             stream_prefix=args.prefix, object_type=args.object_type,
                             timezone=args.timezone)
    if summary.written == 0:
        print(f"nothing new: all {summary.events} events of {args.log} are already in "
              f"{_name(args.db)}")
    elif summary.written < summary.events:
        print(f"imported {summary.written} new events into {_name(args.db)} "
              f"({summary.already_stored} of the {summary.events} were already there)")
    else:
        print(f"imported {summary.events} events of {summary.cases} cases "
              f"({summary.activities} activities) into {_name(args.db)}")


@_failing
def _info(args: argparse.Namespace) -> None:
    from .loginfo import info

    args.db = args.db or args.target
    if not args.db:
        raise SystemExit("error: name the log: eventlab info FILE_OR_URL")
    with _open(args.db, read_only=True) as store:
        facts = info(store)
    print(f"{_name(args.db)}: {facts}")


@_failing
def _export(args: argparse.Namespace) -> None:
    with _open(args.db, read_only=True) as store:
        target = store.export_parquet(args.dir, partition_by=args.partition_by,
                                      overwrite=args.overwrite, incremental=args.incremental)
    if not args.incremental:
        parts = args.partition_by
        how = f"partitioned by {', '.join(parts)}" if parts else "unpartitioned"
        print(f"wrote {target.rows} events as Parquet, {how}, to {target}")
    elif target.rows == 0:
        print(f"nothing new: {target} already holds every event")
    else:
        print(f"wrote {target.rows} new events ({len(target.files)} files, partitioned by "
              f"date) to {target}")


@_failing
def _sql(args: argparse.Namespace) -> None:
    import pandas as pd

    with _open(args.db, read_only=True) as store:
        frame = store.sql(args.query)
    with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
        print(frame.to_string(index=False, max_rows=args.max_rows))


@_failing
def _copy(args: argparse.Namespace) -> None:
    from .copying import copy

    with _open(args.source, read_only=True) as source, _open(args.target) as target:
        written = copy(source, target, progress=args.progress)
        total = target.head()
    what = f"copied {written} events" if written else "nothing new to copy"
    print(f"{what} from {_name(args.source)} to {_name(args.target)} "
          f"(the target's log now ends at position {total})")


def _count(text: str) -> int:
    """A whole number >= 0, for argparse (which reports the ValueError's message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


def _names(text: str) -> list[str]:
    """Comma-separated names (``"a,b"``), for argparse; ``""`` is none at all."""
    names = [name.strip() for name in text.split(",")]
    if names == [""]:
        return []
    if "" in names:
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name; give e.g. 'a,b'")
    return names


def _add_log_commands(commands: argparse._SubParsersAction) -> None:
    imp = commands.add_parser("import", help="import an XES, CSV, Parquet or OCEL log into a file")
    imp.add_argument("log", help="the log: .xes, .xes.gz, .csv, .parquet, a Parquet folder, "
                                 ".jsonocel, .xmlocel or .sqlite")
    imp.add_argument("--db", required=True, help="DuckDB file or PostgreSQL URL to import into")
    imp.add_argument("--case", help="the case column (default: found by name)")
    imp.add_argument("--activity", help="the activity column (default: found by name)")
    imp.add_argument("--timestamp", help="the timestamp column (default: found by name)")
    imp.add_argument("--attributes", type=_names, metavar="NAME,...",
                     help="only these other columns (or XES/OCEL attributes) go into the "
                          "payload (default: all; \"\" for none)")
    imp.add_argument("--prefix", default="", help="prefix for the stream ids")
    imp.add_argument("--object-type", help="OCEL 2.0: one stream per object of this type")
    imp.add_argument("--timezone", help="OCEL 2.0: the zone of times written without one "
                                        "(e.g. Europe/Berlin; default UTC)")
    imp.set_defaults(run=_import)
    info = commands.add_parser("info", help="streams, events, types and time span of a log")
    info.add_argument("target", nargs="?", help="DuckDB file or PostgreSQL URL to describe")
    info.add_argument("--db", help="the same, as an option")
    info.set_defaults(run=_info)
    export = commands.add_parser("export", help="write the log as partitioned Parquet")
    export.add_argument("dir", help="the folder to write")
    export.add_argument("--db", required=True, help="DuckDB file or PostgreSQL URL to export")
    export.add_argument("--partition-by", type=_names, default=["type"], metavar="COLUMN,...",
                        help="envelope columns to partition by (default: type; \"\" for "
                             "none; incremental exports use date)")
    export.add_argument("--overwrite", action="store_true", help="replace the folder's files")
    export.add_argument("--incremental", action="store_true",
                        help="write only what is new since the last export, by date")
    export.set_defaults(run=_export)
    query = commands.add_parser("sql", help="run SQL over the view `events`")
    query.add_argument("query", help='e.g. "select type, count(*) from events group by 1"')
    query.add_argument("--db", required=True, help="DuckDB file or PostgreSQL URL to query")
    query.add_argument("--max-rows", type=_count, default=60, help="rows to print at most")
    query.set_defaults(run=_sql)
    copying = commands.add_parser(
        "copy", help="copy every event one log lacks from another (files or URLs)")
    copying.add_argument("source", help="DuckDB file or PostgreSQL URL to copy from")
    copying.add_argument("target", help="DuckDB file or PostgreSQL URL to copy into")
    copying.add_argument("--progress", action="store_true", help="show a progress bar")
    copying.set_defaults(run=_copy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eventlab",
                                     description="eventlab: event sourcing you can see")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the bank-account example end to end")
    demo.add_argument("--db", help="DuckDB file or PostgreSQL URL (default: a temporary file)")
    demo.set_defaults(run=_demo)
    _add_log_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)
