"""README.md and docs/*.md: every relative link lands, and every page is in the contents."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, where Markdown links and headings live."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation other than hyphens
    and underscores dropped, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = text.replace("`", "").replace("*", "")
    return "".join(c for c in text if c.isalnum() or c in "-_ ").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(page.read_text()):
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    return [m.group(1) for line in prose(page.read_text()) for m in LINK.finditer(line)]


def test_slugs_follow_githubs_rules():
    assert slug("Run the checks once: `dq-monitor check`") == "run-the-checks-once-dq-monitor-check"
    assert slug("The service (`python bench/service_bench.py`)") == (
        "the-service-python-benchservice_benchpy"
    )
    assert slug("What the gate and the migration guarantee, and what they do not") == (
        "what-the-gate-and-the-migration-guarantee-and-what-they-do-not"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # http(s) and mailto: not followed (the tests touch no network)
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT)}")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readmes_contents():
    readme = (ROOT / "README.md").read_text()
    contents = readme.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    linked = {Path(t.partition("#")[0]).as_posix() for t in LINK.findall(contents)}
    pages = {p.relative_to(ROOT).as_posix() for p in PAGES[1:]}
    assert pages, "docs/ holds no page"
    assert pages <= linked, f"not in the README's contents: {sorted(pages - linked)}"


def test_the_contents_list_every_section_of_the_readme():
    readme = ROOT / "README.md"
    contents = readme.read_text().split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = {t[1:] for t in LINK.findall(contents) if t.startswith("#")}
    sections = {slug(line[3:]) for line in prose(readme.read_text()) if line.startswith("## ")}
    assert sections - {"contents"} == listed
