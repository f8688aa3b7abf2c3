"""``crface weights``: list the registered weights."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list registered ranker weights")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crface.weights import list_weights

    rows = list_weights()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<16} {'size':>10}  {'sha256':<16}  {'trained':<7}  description")
    for r in rows:
        print(
            f"{r['name']:<16} {r['size'] / 1e6:>8.2f}MB  {r['sha256'][:16]}  "
            f"{'yes' if r['trained'] else 'NO':<7}  {r['description']}"
        )
    return 0
