"""The package's shape: what ``import kstream`` loads, import cycles, and module length.

* ``import kstream`` is the sans-IO tier: it must load no runtime and no I/O module.
* No two modules of ``src/kstream`` import each other, directly or through others; every
  import counts, those under ``if TYPE_CHECKING:`` and inside functions included, except
  the edges of :data:`LENT_FOR_CHECKERS`.
* No module is longer than :data:`MAX_LINES`, except those in :data:`STILL_LONG`, which
  are being split.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kstream

SRC = Path(kstream.__file__).resolve().parent
PACKAGE = "kstream"

#: Modules ``import kstream`` must not load.
FORBIDDEN_ON_IMPORT = frozenset({
    "asyncio", "trio", "ssl", "socket", "threading", "selectors", "logging", "subprocess",
})

#: The longest a module may be, in lines.
MAX_LINES = 900

#: Modules (relative to ``src/kstream``) still over :data:`MAX_LINES` while they are being
#: split. Remove each one once it is short; the goal is an empty set.
STILL_LONG: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- sys.modules


def test_import_kstream_loads_no_runtime_and_no_io_module() -> None:
    code = (
        "import sys\n"
        "import kstream\n"
        f"forbidden = {sorted(FORBIDDEN_ON_IMPORT)!r}\n"
        "print(' '.join(sorted(name for name in forbidden if name in sys.modules)))\n"
    )
    # A fresh interpreter without the coverage hooks make test puts in child processes
    # (coverage itself loads socket and threading).
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=env)
    loaded = result.stdout.split()
    assert loaded == [], f"import kstream loads {', '.join(loaded)}"


def test_root_names_resolve_without_a_runtime() -> None:
    # Every public name, the adapters' errors and results included, is there after a
    # bare ``import kstream`` (the previous test shows no runtime was loaded for them).
    assert len(set(kstream.__all__)) == len(kstream.__all__)
    missing = [name for name in kstream.__all__ if not hasattr(kstream, name)]
    assert missing == []


# --------------------------------------------------------------------------- import graph


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that module ``name`` (at ``path``) imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # The package a relative import starts from: the module's own package,
                # then one level up per extra dot.
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # "from package import module" imports the module itself.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                       else source for alias in node.names]
        else:
            continue
        for target in targets:
            # "import a.b.c" depends on the deepest package module named.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's strongly connected components; each component of two or more modules is
    # a cycle (a module never counts as importing itself).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_import_graph_sees_relative_and_type_only_imports() -> None:
    # A check on the checker: edges it must find in today's tree.
    graph = _import_graph()
    assert "kstream._errors" in graph["kstream._events"]         # under TYPE_CHECKING
    assert "kstream._status_types" in graph["kstream._errors"]
    assert "kstream._errors" in graph["kstream._ws.connection"]  # from .. import
    assert "kstream._ws.connection" in graph["kstream"]
    assert "kstream._ws" not in graph["kstream._ws.connection"]  # no parent-package edges
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


#: ``kstream.asyncio`` and ``kstream.trio`` lend their port-forward names at run time
#: through a module ``__getattr__`` (``_runtime/lazy.py``, no import), and import them
#: under ``if TYPE_CHECKING:`` only, so that type checkers see them; the port-forward
#: modules build on the runtimes' pumps. These type-only back edges are the one exception.
LENT_FOR_CHECKERS = {("kstream.asyncio", "kstream._asyncio_portforward"),
                     ("kstream.trio", "kstream._trio_portforward")}


def test_no_import_cycle() -> None:
    graph = _import_graph()
    for module, lent in LENT_FOR_CHECKERS:
        assert lent in graph[module], "a lent edge went away: drop it from the exceptions"
        graph[module] = graph[module] - {lent}
    cycles = _cycles(graph)
    assert cycles == [], "modules that import each other: " + "; ".join(
        " <-> ".join(cycle) for cycle in cycles)


def test_layer_zero_imports_only_layer_zero() -> None:
    # The bottom of the package (errors, events, channels, the Status types and the Go
    # JSON helpers) imports nothing but itself and the standard library.
    layer_zero = {"kstream._errors_base", "kstream._gojson", "kstream._status_types",
                  "kstream._errors", "kstream._events", "kstream._channels",
                  "kstream._version"}
    graph = _import_graph()
    outside = {name: sorted(graph[name] - layer_zero) for name in sorted(layer_zero)}
    assert {name: found for name, found in outside.items() if found} == {}


# --------------------------------------------------------------------------- file length


def _line_counts() -> dict[str, int]:
    return {path.relative_to(SRC).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
            for path in sorted(SRC.rglob("*.py"))}


def test_no_module_is_too_long() -> None:
    too_long = {name: lines for name, lines in _line_counts().items()
                if lines > MAX_LINES and name not in STILL_LONG}
    assert too_long == {}, f"modules over {MAX_LINES} lines (split them): {too_long}"


def test_still_long_lists_only_long_modules() -> None:
    # Keeps STILL_LONG honest: a module split below the limit leaves the list.
    counts = _line_counts()
    stale = sorted(name for name in STILL_LONG if counts.get(name, 0) <= MAX_LINES)
    assert stale == [], f"no longer over {MAX_LINES} lines, remove from STILL_LONG: {stale}"


# --------------------------------------------------------------------------- layers


#: The layers of docs/architecture.md, by module name prefix (the longest match wins).
LAYERS = {
    "kstream._version": 0, "kstream._errors_base": 0, "kstream._errors": 0,
    "kstream._events": 0, "kstream._channels": 0, "kstream._gojson": 0,
    "kstream._status_types": 0, "kstream._status": 0, "kstream._http": 0,
    "kstream._resize": 0,
    "kstream._upgrade": 1, "kstream._ws": 1, "kstream._spdy": 1,
    "kstream._exec": 2, "kstream._portforward": 2, "kstream._tunnel": 2,
    "kstream._runtime": 3,
    "kstream.asyncio": 4, "kstream.trio": 4, "kstream._asyncio_dial": 4, "kstream._trio_dial": 4,
    "kstream._asyncio_portforward": 4, "kstream._trio_portforward": 4,
    "kstream._asyncio_client": 4, "kstream._trio_client": 4,
    "kstream._app": 5, "kstream.bench": 5, "kstream.compat": 5, "kstream.testing": 5,
    "kstream.server": 5, "kstream.kubeconfig": 5, "kstream.demo": 5,
    "kstream.__main__": 5,
}

#: Standard modules the sans-IO core (layers 0-2) must not import: they do I/O or wait.
CORE_FORBIDDEN = frozenset({"socket", "ssl", "asyncio", "trio", "threading", "subprocess",
                            "selectors", "logging", "time"})


def _layer(name: str) -> int:
    if name == PACKAGE:
        return 3  # the root: layers 0-2 and the adapters' errors (layer 3)
    prefix = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name in _modules() if name != PACKAGE
                and not any(name == p or name.startswith(p + ".") for p in LAYERS)]
    assert unplaced == [], f"modules missing from LAYERS and docs/architecture.md: {unplaced}"


def test_modules_import_only_their_layer_and_below() -> None:
    upward = []
    for name, targets in _import_graph().items():
        if name == PACKAGE:
            # The root re-exports the sans-IO tier and the adapters' errors only.
            allowed = {t for t in targets if _layer(t) <= 2 or t == "kstream._runtime.errors"}
            upward += [f"{name} -> {t}" for t in sorted(targets - allowed)]
            continue
        upward += [f"{name} -> {t}" for t in sorted(targets) if _layer(t) > _layer(name)]
    assert upward == []


def test_websocket_and_spdy_do_not_import_each_other() -> None:
    # The engines stay apart; only the sessions above them (``_exec``, ``_portforward``)
    # and the tunnel, which carries SPDY in WebSocket messages, import both.
    graph = _import_graph()
    crossing = [f"{name} -> {target}" for name, targets in graph.items()
                for target in targets
                if (name.startswith("kstream._ws") and target.startswith("kstream._spdy"))
                or (name.startswith("kstream._spdy") and target.startswith("kstream._ws"))]
    assert crossing == []


def test_only_the_tunnel_carries_spdy_in_websocket() -> None:
    # The tunnel is the one place a module imports both engines directly (its SPDY bytes
    # ride in WebSocket messages); the port-forward dispatcher reaches both only through
    # the transports' own modules.
    graph = _import_graph()
    both = sorted(name for name, targets in graph.items()
                  if any(t.startswith("kstream._ws") for t in targets)
                  and any(t.startswith("kstream._spdy") for t in targets)
                  and name.startswith(("kstream._portforward", "kstream._tunnel")))
    assert all(name.startswith("kstream._tunnel") for name in both), both


def test_the_sans_io_core_imports_nothing_that_does_io() -> None:
    found = []
    for name, path in _modules().items():
        if name == PACKAGE or _layer(name) > 2:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and not node.level else [])
            found += [f"{name}: {n}" for n in names if n.split(".")[0] in CORE_FORBIDDEN]
    assert found == []


def test_an_unknown_public_name_is_an_attribute_error() -> None:
    # The lazy __getattr__ (PEP 562) answers only the names of __all__.
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        kstream.nothing_here  # noqa: B018
    assert "ClientExecSession" in dir(kstream)
