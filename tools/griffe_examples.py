"""Griffe extension for the API pages: read crface's ``Example:`` docstring sections as examples.

crface's Google-style docstrings title their examples ``Example:``; griffe only treats the plural
``Examples:`` as an examples section (the singular becomes an admonition whose ``>>>`` lines render
as prose). This renames the title when the site is built; the sources stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rewrite ``Example:`` section titles to ``Examples:`` in every loaded docstring."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = _TITLE.sub(r"\1Examples:", obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
