"""Run every Python example of the documentation, so that the documentation stays true.

Every fenced code block of ``README.md`` and ``docs/*.md`` is collected. What happens to
it depends on its info string (the words after the opening fence):

``python``
    Executed, each block on its own in a fresh namespace (``__name__ == "__main__"``),
    with a 30 s timeout. It may use only kstream and the standard library, in memory:
    no network, no cluster, no terminal. Show results with ``assert``.
``python no-run``
    Compiled but not executed (it must still be valid Python): examples that need a
    network, a cluster, a terminal, or that run forever.
``python pytest``
    A test module: written to a file and run by pytest in a fresh process (its tests
    must pass), for examples of pytest fixtures such as ``kstream_node``.
``pycon``
    An interactive session, run by :mod:`doctest` in a fresh namespace: the output shown
    must be the output produced (``...`` matches anything, as doctest's ``ELLIPSIS``).
``pycon no-run``
    Parsed and compiled, not executed.
anything else (``text``, ``console``, ``sh``, no info string)
    Not Python: not checked. Use ``text`` for signatures and pseudo-code.

``py`` and ``python3`` are read as ``python``. A Python block with any other word after
the language, or a fence that is never closed, fails the test: a typo must not skip an
example silently. Tracebacks point at the Markdown file and line.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Languages whose blocks are checked, by the kind of check.
PYTHON_LANGUAGES = frozenset({"python", "py", "python3"})
PYCON_LANGUAGES = frozenset({"pycon"})
NO_RUN = "no-run"
PYTEST = "pytest"

_OPENING = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file.

    Attributes:
        path: the Markdown file.
        line: the 1-based line of the block's first code line.
        info: the info string (what follows the opening fence), stripped.
        code: the block's text, dedented by the fence's indentation.
        problem: why the block cannot be checked ("" when it can).
    """

    path: Path
    line: int
    info: str
    code: str
    problem: str = ""

    @property
    def name(self) -> str:
        """``file:line``, relative to the repository root when possible."""
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"

    @property
    def language(self) -> str:
        """The first word of the info string, lower-cased (``""`` if none)."""
        words = self.info.split()
        return words[0].lower() if words else ""

    @property
    def flags(self) -> tuple[str, ...]:
        """The words of the info string after the language."""
        return tuple(self.info.split()[1:])

    @property
    def kind(self) -> str | None:
        """``"python"``, ``"pycon"`` or ``None`` (not Python: not checked)."""
        if self.language in PYTHON_LANGUAGES:
            return "python"
        if self.language in PYCON_LANGUAGES:
            return "pycon"
        return None


def extract_blocks(text: str, path: Path) -> list[Block]:
    """Return every fenced code block of a Markdown text, in order.

    Follows CommonMark where it matters here: backtick or tilde fences of three or more,
    closed by a fence of the same character at least as long; the opening fence's
    indentation is removed from the code lines. A fence never closed yields a block whose
    ``problem`` says so.

    Args:
        text: the Markdown source.
        path: the file it came from (for names and tracebacks).
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        index += 1
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        closing = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}} *$")
        start = index
        while index < len(lines) and not closing.match(lines[index]):
            index += 1
        code = "".join(_dedent(line, indent) + "\n" for line in lines[start:index])
        problem = "" if index < len(lines) else "the fence is never closed"
        blocks.append(Block(path, start + 1, opening["info"].strip(), code, problem))
        index += 1  # past the closing fence
    return blocks


def _dedent(line: str, indent: int) -> str:
    # CommonMark removes up to the opening fence's indentation from each content line.
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(indent, stripped):]


def check_problem(block: Block) -> str:
    """Return why a Python block cannot be checked as written, or ``""``."""
    if block.problem:
        return block.problem
    unknown = [flag for flag in block.flags if flag not in (NO_RUN, PYTEST)]
    if unknown:
        return (f"unknown word(s) {unknown} after {block.language!r}: the only ones are "
                f"{NO_RUN!r} and {PYTEST!r} (use 'text' for blocks that are not Python)")
    return ""


def documentation_files() -> list[Path]:
    """README.md and every docs/*.md, sorted."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks() -> list[Block]:
    """Every block of the documentation that is Python or claims to be."""
    return [block for path in documentation_files()
            for block in extract_blocks(path.read_text(encoding="utf-8"), path)
            if block.kind is not None or block.problem]


def run_python(block: Block, *, execute: bool) -> None:
    """Compile a ``python`` block (line numbers as in the Markdown file) and maybe run it."""
    source = "\n" * (block.line - 1) + block.code
    try:
        code = compile(source, str(block.path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        exc.add_note("Not meant to be Python? Fence it as ```text instead.")
        raise
    if execute:
        exec(code, {"__name__": "__main__"})


def run_pycon(block: Block, *, execute: bool) -> None:
    """Run a ``pycon`` block with doctest (or only compile its examples)."""
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.code, {"__name__": "__main__"}, block.name,
                              str(block.path), block.line - 1)
    assert test.examples, f"{block.name}: a pycon block without a single '>>>' example"
    if not execute:
        for example in test.examples:
            compile(example.source, block.name, "single", dont_inherit=True)
        return
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=report.append, clear_globs=True)
    if result.failed:
        pytest.fail("".join(report), pytrace=False)


BLOCKS = python_blocks()


def run_pytest(block: Block, directory: Path) -> None:
    """Run a ``python pytest`` block as a test module (line numbers as in the file)."""
    module = directory / f"test_{block.path.stem}_{block.line}.py"
    module.write_text("\n" * (block.line - 1) + block.code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=directory, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        pytest.fail(f"{block.name}:\n{result.stdout}\n{result.stderr}", pytrace=False)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_documentation_example(block: Block, tmp_path: Path) -> None:
    problem = check_problem(block)
    if problem:
        pytest.fail(f"{block.name}: {problem}", pytrace=False)
    execute = NO_RUN not in block.flags
    if execute and PYTEST in block.flags:
        run_pytest(block, tmp_path)
    elif block.kind == "pycon":
        run_pycon(block, execute=execute)
    else:
        run_python(block, execute=execute)


def test_the_documentation_has_runnable_examples() -> None:
    # Guards the collection itself: a broken extractor must not pass by finding nothing.
    names = {block.path.name for block in BLOCKS if NO_RUN not in block.flags}
    assert {"README.md", "websocket.md", "status.md", "testing-properties.md"} <= names


# --------------------------------------------------------------------------------------
# The extractor itself


SAMPLE = """\
# Title

```python
x = 1
```

- a list item:

  ```python no-run
  connect()
    indented()
  ```

~~~~pycon
>>> 1 + 1
2
```python
~~~~

```text
not python
```

Inline ```python``` is no fence.

````py
```
````

```Python3 norun
y = 2
```
"""


def test_extract_blocks_reads_fences_like_commonmark() -> None:
    blocks = extract_blocks(SAMPLE, Path("sample.md"))
    assert [(b.line, b.info, b.kind) for b in blocks] == [
        (4, "python", "python"),
        (10, "python no-run", "python"),
        (15, "pycon", "pycon"),
        (21, "text", None),
        (27, "py", "python"),
        (31, "Python3 norun", "python"),
    ]
    assert blocks[1].code == "connect()\n  indented()\n"
    assert blocks[2].code == ">>> 1 + 1\n2\n```python\n"
    assert blocks[4].code == "```\n"
    assert [check_problem(b) != "" for b in blocks if b.kind] == [
        False, False, False, False, True]


def test_an_unclosed_fence_is_a_problem() -> None:
    (block,) = extract_blocks("text\n```python\nx = 1\n``\n", Path("sample.md"))
    assert block.code == "x = 1\n``\n"
    assert check_problem(block) == "the fence is never closed"


def test_failures_point_at_the_markdown_line(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text("intro\n\n```python\nx = 1\nassert x == 2\n```\n", encoding="utf-8")
    (block,) = extract_blocks(path.read_text(encoding="utf-8"), path)
    with pytest.raises(AssertionError) as caught:
        run_python(block, execute=True)
    assert caught.traceback[-1].lineno + 1 == 5
    assert str(caught.traceback[-1].path) == str(path)
    run_python(block, execute=False)  # compiles fine


def test_pycon_output_must_match() -> None:
    good = Block(Path("doc.md"), 3, "pycon", ">>> b'a' + b'b'\nb'ab'\n>>> print('x' * 40)\nx...\n")
    run_pycon(good, execute=True)
    bad = Block(Path("doc.md"), 3, "pycon", ">>> 1 + 1\n3\n")
    with pytest.raises(pytest.fail.Exception, match="Expected:"):
        run_pycon(bad, execute=True)
    run_pycon(bad, execute=False)
    invalid = Block(Path("doc.md"), 3, "pycon", ">>> 1 +\n")
    with pytest.raises(SyntaxError):
        run_pycon(invalid, execute=False)


def test_no_run_blocks_must_still_compile() -> None:
    block = Block(Path("doc.md"), 1, "python no-run", "def f(:\n")
    with pytest.raises(SyntaxError):
        run_python(block, execute=False)
