"""The ``crface`` command line (also ``python -m crface``).

Each sub-command lives in its own module under ``crface._cli`` exposing ``register(subparsers)``
(modules whose names start with ``_`` are shared helpers),
which adds a parser whose ``func(args) -> int`` does the work. User errors raise ``CLIError`` (or
ValueError / FileNotFoundError / ImportError / TypeError) and become a one-line message and exit 2.
Messages and warnings from the library name Python keywords (``invalid='drop'``); they are printed
with the flags instead (``--invalid drop``, see :func:`crface._cli._common.to_flags`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from crface import _cli
from crface._cli._common import to_flags


class CLIError(Exception):
    """A user error that the CLI reports in one line."""


def build_parser() -> argparse.ArgumentParser:
    from crface import __version__

    parser = argparse.ArgumentParser(
        prog="crface", description="Confidence ranking for face detectors (CRFace)."
    )
    parser.add_argument("--version", action="version", version=f"crface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(
        m.name for m in pkgutil.iter_modules(_cli.__path__) if not m.name.startswith("_")
    ):
        importlib.import_module(f"crface._cli.{mod}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"crface {args.command}: warning: {to_flags(str(message))}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return int(args.func(args) or 0)
    except (CLIError, ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        print(f"crface {args.command}: error: {to_flags(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crface {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
