"""MkDocs hook: links from docs/ to repository files outside it point at the repository.

The Markdown keeps relative links such as ``../examples/video.py`` (they work when browsing the
repository), and the built site turns them into ``<repo_url>/blob/main/examples/video.py``.
"""

from __future__ import annotations

import re
from typing import Any

_OUTSIDE = re.compile(r"\]\(\.\./([^)\s]+)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    repo = (config.get("repo_url") or "").rstrip("/")
    if not repo:
        return markdown
    return _OUTSIDE.sub(lambda m: f"]({repo}/blob/main/{m.group(1)})", markdown)
