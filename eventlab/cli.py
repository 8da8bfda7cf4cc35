"""The command line: ``python -m eventlab demo`` and friends, mirroring the Python API.

    python -m eventlab demo
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eventlab",
                                     description="eventlab: event sourcing you can see")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the bank-account example end to end")
    demo.add_argument("--db", help="DuckDB file to use (default: a temporary file)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)
