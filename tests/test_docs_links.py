"""The README and ``docs/`` link only to files in the repository, and to headings that exist.

Every relative link of ``README.md`` and ``docs/**/*.md`` -- inline ``[text](target)``,
reference definitions ``[label]: target`` and ``<img src>`` / ``<a href>`` -- must name a
file or folder inside the checkout (no ``..`` out of it, no absolute path), and its
``#fragment``, when it points into a Markdown page, a heading of that page as GitHub
renders anchors. Links inside code are not links. URLs with a scheme are not checked
(that would need the network).

Pages also name files in code spans (`` `docs/guide.md` ``, `` `../x/notes.md` ``): a
Markdown file named so must exist in the checkout too (beside the page, at the root, or
in ``docs/``), so that no page sends a reader to notes the repository does not have.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md",
                *(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)])

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
_HTML = re.compile(r"<(?:a|img)\b[^>]*\b(?:href|src)=\"([^\"]+)\"", re.I)
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.M)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Every link target of a Markdown text, outside code."""
    prose = _prose(text)
    return [m.group(1) for pattern in (_INLINE, _REFERENCE, _HTML)
            for m in pattern.finditer(prose)]


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings (``-1``, ``-2``... for repeats)."""
    seen: Counter[str] = Counter()
    result = set()
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))  # link text only
        slug = re.sub(r"[^\w\- ]", "", title.lower().replace("`", "")).replace(" ", "-")
        result.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return result


def broken(page: Path) -> list[str]:
    """The relative links of ``page`` that do not resolve, with why."""
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if _SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, fragment = target.partition("#")
        if not path_part:
            resolved = page
        elif path_part.startswith("/"):
            problems.append(f"{target}: an absolute path, not a file of the repository")
            continue
        else:
            resolved = (page.parent / path_part).resolve()
        if not resolved.is_relative_to(ROOT) or ".venv" in resolved.parts:
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(
                resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{fragment} in {resolved.name}")
    return problems


_NAMED_PAGE = re.compile(r"[\w./-]+\.md(?:#[\w-]+)?")


def missing_named_pages(page: Path) -> list[str]:
    """Markdown files named in code spans of ``page`` that the repository lacks."""
    missing = []
    for match in _CODE_SPAN.finditer(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        name = match.group(0).strip("`").strip()
        if not _NAMED_PAGE.fullmatch(name):
            continue
        path = name.partition("#")[0]
        candidates = [(base / path).resolve() for base in (page.parent, ROOT, ROOT / "docs")]
        if not any(c.is_relative_to(ROOT) and c.exists() for c in candidates):
            missing.append(name)
    return missing


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    assert broken(page) == []


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_pages_named_in_code_exist(page: Path) -> None:
    assert missing_named_pages(page) == []


def test_the_checker_sees_links_and_ignores_code(tmp_path: Path) -> None:
    text = ("See [a](a.md#x), ![img](pic.png \"t\"), <a href=\"b.md\">b</a> and\n"
            "[ref]: c.md\n`[no](code.md)`\n```\n[no](fenced.md)\n```\n"
            "[web](https://example.org/) [self](#top)\n")
    assert links(text) == ["a.md#x", "pic.png", "https://example.org/", "#top", "c.md",
                           "b.md"]
    assert anchors("# Top\n## `make demo`: two commands\n## Top\n```\n# not\n```\n") == {
        "top", "make-demo-two-commands", "top-1"}


def test_the_checker_reports_what_is_wrong(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[x](missing.md) [y](/etc/passwd) [z](#nowhere)\n# Here\n")
    problems = broken(page)
    assert any("absolute path" in p for p in problems)
    # tmp_path is outside the repository: every other link is outside it too.
    assert any("outside the repository" in p for p in problems)
    inside = ROOT / "docs" / "guide.md"
    text = inside.read_text(encoding="utf-8")
    assert anchors(text) and "addresses-pods-and-credentials" in anchors(text)
    page.write_text("see `../shared/notes.md`, `docs/guide.md` and `cli.md#kubeconfig`\n")
    assert missing_named_pages(page) == ["../shared/notes.md"]
