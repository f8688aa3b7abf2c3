"""Every ```python block in README.md and docs/*.md runs.

Blocks of one page run in order in one namespace, so a block can use the names of the blocks above
it; each page gets its own namespace and its own temporary working directory (files that examples
write land there). A block whose first line starts with ``>>>`` is a doctest: its outputs are
compared. A block that needs something optional says so on the line before its fence, e.g.
``<!-- requires: shared -->`` (the ../shared folder) or ``<!-- requires: mmdet -->`` (an importable
module), and is skipped with that reason when it is missing. Shell commands use ```bash fences and
are not run.
"""

from __future__ import annotations

import doctest
import importlib.util
import io
import re
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crface.paths import shared_root
from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(`{3,})\s*([\w+-]*)")
REQUIRES = re.compile(r"^<!--\s*requires:\s*(.+?)\s*-->\s*$")
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
FENCED = re.compile(r"^\s*(`{3,}).*?^\s*\1\s*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the first code line
    language: str
    code: str
    requires: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` with the ``requires`` marker that precedes each."""
    blocks, lines = [], page.read_text(encoding="utf-8").splitlines()
    requires: tuple[str, ...] = ()
    i = 0
    while i < len(lines):
        marker = REQUIRES.match(lines[i].strip())
        fence = FENCE.match(lines[i])
        if marker:
            requires = tuple(r.strip() for r in marker.group(1).split(","))
        elif fence:
            end = next(
                (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)),
                len(lines),
            )
            code = textwrap.dedent("\n".join(lines[i + 1 : end]) + "\n")
            blocks.append(Block(page, i + 2, fence.group(2).lower(), code, requires))
            requires, i = (), end
        elif lines[i].strip():
            requires = ()
        i += 1
    return blocks


def missing(requirement: str) -> str | None:
    """Why ``requirement`` is unavailable here, or ``None`` when it is available."""
    if requirement == "shared":
        return None if shared_root() else "needs ../shared (set CRFACE_SHARED)"
    if importlib.util.find_spec(requirement) is None:
        return f"needs the optional module {requirement!r}"
    return None


@dataclass
class PageRun:
    """The state of one page: its namespace and how far its blocks have run."""

    blocks: list[Block]
    workdir: Path
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__docs__"})
    done: int = 0
    failed: str | None = None

    def run_block(self, block: Block) -> None:
        why = [m for m in (missing(r) for r in block.requires) if m]
        if why:
            pytest.skip(f"{block.id}: {'; '.join(why)}")
        if block.code.lstrip().startswith(">>>"):
            self._doctest(block)
        else:
            # Pad so that tracebacks show the line numbers of the Markdown file.
            code = "\n" * (block.line - 1) + block.code
            exec(compile(code, str(block.page), "exec"), self.namespace)

    def _doctest(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest(
            block.code, self.namespace, block.id, str(block.page), block.line - 1
        )
        out = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
        result = runner.run(test, out=out.write, clear_globs=False)
        if result.failed:
            pytest.fail(f"doctest {block.id} failed:\n{out.getvalue()}", pytrace=False)

    def execute(self, index: int) -> None:
        """Run block ``index``; a failure is remembered so that later blocks skip."""
        block = self.blocks[index]
        self.done = index + 1
        try:
            self.run_block(block)
        except pytest.skip.Exception:
            raise
        except BaseException:
            self.failed = block.id
            raise

    def run_upto(self, index: int) -> None:
        """Run the blocks before ``index`` that have not run yet (for ``-k`` selections)."""
        while self.done < index:
            try:
                self.execute(self.done)
            except pytest.skip.Exception:
                continue


RUNNABLE = {page: [b for b in parse_blocks(page) if b.language == "python"] for page in PAGES}
CASES = [(page, i) for page, blocks in RUNNABLE.items() for i in range(len(blocks))]


@pytest.fixture(scope="module")
def page_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, PageRun]:
    return {
        page: PageRun(blocks, tmp_path_factory.mktemp(page.stem))
        for page, blocks in RUNNABLE.items()
    }


@pytest.mark.parametrize(("page", "index"), CASES, ids=[RUNNABLE[p][i].id for p, i in CASES])
def test_python_block_runs(
    page: Path, index: int, page_runs: dict[Path, PageRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = page_runs[page]
    monkeypatch.chdir(run.workdir)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*UNTRAINED", category=UserWarning)
        run.run_upto(index)
        if run.failed:
            pytest.skip(f"an earlier block of this page failed ({run.failed})")
        run.execute(index)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_fences_name_their_language(page: Path) -> None:
    """A fence without a language would silently escape this test; `py`/`pycon` too."""
    bad = [b.id for b in parse_blocks(page) if b.language in ("", "py", "pycon", "python3")]
    assert not bad, f"label these fences ```python (runs) or ```bash / ```text (does not): {bad}"


def test_requires_markers_precede_python_blocks() -> None:
    """A marker before a non-Python block (or a typo) would be ignored: catch it."""
    stray = [
        b.id for page in PAGES for b in parse_blocks(page) if b.requires and b.language != "python"
    ]
    assert not stray, f"`<!-- requires: ... -->` only applies to ```python blocks: {stray}"


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    """Links to files (``docs/img/x.png``, ``../examples/video.py``) point at existing files;
    ``mkdocs build --strict`` checks the links between pages, not those leaving ``docs/``."""
    text = FENCED.sub("", page.read_text(encoding="utf-8"))
    targets = {m.group(1).split("#")[0] for m in LINK.finditer(text)}
    local = [t for t in targets if t and not re.match(r"[a-z]+:", t)]
    broken = sorted(t for t in local if not (page.parent / t).exists())
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_parse_blocks_reads_markers(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "text\n\n<!-- requires: shared, mmdet -->\n\n```python\nx = 1\n```\n\n"
        "```bash\nls\n```\n````python\n```\n````\n"
    )
    blocks = parse_blocks(page)
    assert [(b.language, b.requires, b.line) for b in blocks] == [
        ("python", ("shared", "mmdet"), 6),
        ("bash", (), 10),
        ("python", (), 13),
    ]
    assert blocks[2].code == "```\n"


# Facts generated from the shipped files (tools/doc_facts.py) ----------------------------------


@pytest.fixture(scope="module")
def doc_facts() -> Any:
    """``tools/doc_facts.py`` as a module."""
    return load_script("tools/doc_facts.py")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_facts_blocks_are_current(page: Path, doc_facts: Any) -> None:
    """Every ``<!-- facts:NAME -->`` block holds what the shipped weights and results/ say."""
    text = page.read_text(encoding="utf-8")
    assert doc_facts.render(text) == text, (
        f"{page.relative_to(ROOT)} disagrees with the shipped files: run "
        "`.venv/bin/python tools/doc_facts.py` and commit the result"
    )


SIZE_CLAIM = re.compile(r"\b([NS]) = (\d+)\b")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_model_size_claims_match_the_shipped_weights(page: Path, doc_facts: Any) -> None:
    """Prose like ``N = 1000`` / ``S = 416`` (with spaces) names the shipped model's capacity and
    working size; write other settings without spaces (``S=640``) or generate them."""
    config = doc_facts.config("crface-small")
    shipped = {"N": str(config.num_boxes), "S": str(config.image_size)}
    text = doc_facts.MARK.sub("", FENCED.sub("", page.read_text(encoding="utf-8")))
    wrong = [m.group(0) for m in SIZE_CLAIM.finditer(text) if m.group(2) != shipped[m.group(1)]]
    assert not wrong, f"{page.relative_to(ROOT)}: {wrong}, but crface-small has {shipped}"


FRONT_PAGES = [ROOT / "README.md", ROOT / "docs" / "index.md"]


@pytest.mark.parametrize("page", FRONT_PAGES, ids=[p.name for p in FRONT_PAGES])
def test_front_page_states_what_it_measurably_does(page: Path) -> None:
    """The first screen shows the measured table, not a promise; the zoom section follows it."""
    text = page.read_text(encoding="utf-8")
    assert "make any face detector better" not in text.lower()
    start = text.index("<!-- facts:table.measured -->")
    assert text[:start].count("\n") < 30, "the measured table must be on the first screen"
    end = text.index("<!-- /facts -->", start)
    heading = re.search(r"^#+ (.+)$", text[end:], re.MULTILINE)
    assert heading and heading.group(1) == "Zoom", "the Zoom section comes right after the table"


THREAD_PAGES = {
    "README.md": "## Speed",
    "docs/faq.md": "## GPU, ONNX and speed",
    "docs/results.md": "## Speed",
}


@pytest.mark.parametrize("page", THREAD_PAGES)
def test_speed_sections_say_one_thread(page: str) -> None:
    """Published speeds are one-thread numbers, and the default-thread slowdown is stated."""
    text = (ROOT / page).read_text(encoding="utf-8")
    start = text.index(THREAD_PAGES[page] + "\n")
    section = text[start : text.find("\n## ", start + 1)]
    assert "OMP_NUM_THREADS=1" in section
    assert "2.4 s" in section and "38 ms" in section and "2-core" in section


def test_render_fills_inline_and_block_facts(
    doc_facts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(doc_facts.FACTS, "x", lambda: "42")
    monkeypatch.setitem(doc_facts.FACTS, "t", lambda: "| a |\n|---|")
    text = "N = <!-- facts:x -->7<!-- /facts -->.\n<!-- facts:t -->\n<!-- /facts -->\n"
    assert doc_facts.render(text) == (
        "N = <!-- facts:x -->42<!-- /facts -->.\n<!-- facts:t -->\n\n| a |\n|---|\n\n<!-- /facts -->\n"
    )
    with pytest.raises(KeyError, match="unknown fact 'nope'"):
        doc_facts.render("<!-- facts:nope --><!-- /facts -->")
