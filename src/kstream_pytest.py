"""The pytest plugin of ``kstream.testing``: the ``kstream_node`` fixture.

Registered through the ``pytest11`` entry point, so pytest loads it in every run of a
project that installed kstream. It is therefore a module of its own, outside the
``kstream`` package, and imports nothing but pytest when it loads: kstream (and the
node's engine) is imported by the fixture, only in the tests that use it.

* ``kstream_node``: a running :class:`kstream.testing.FakeNode` on its own thread
  (:meth:`~kstream.testing.FakeNode.in_thread`), so any client works against it, sync or
  async, on any event loop.
* ``@pytest.mark.kstream_pod(name, command=..., handler=..., namespace=..., faults=...)``:
  a pod of the test's node (repeat the marker for more pods).
* ``@pytest.mark.kstream_node(faults=..., tls=...)``: the node's own options.
* ``--kstream-pod [NAMESPACE/]NAME[=COMMAND]`` (repeatable): a pod of every node of the
  run, as ``kstream serve --pod`` takes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kstream.testing import FakeNode

__all__ = ["kstream_node", "pytest_addoption", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--kstream-pod``."""
    group = parser.getgroup("kstream", "kstream.testing fake node")
    group.addoption("--kstream-pod", action="append", default=[], dest="kstream_pods",
                    metavar="[NAMESPACE/]NAME[=COMMAND]",
                    help="a pod of every kstream_node fixture (COMMAND: its main process, "
                         "split as a shell would; no shell runs it)")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers (for ``--strict-markers``)."""
    config.addinivalue_line(
        "markers", "kstream_pod(name, *, command=None, handler=None, namespace='default', "
                   "faults=None): a pod of the test's kstream_node fixture")
    config.addinivalue_line(
        "markers", "kstream_node(*, faults=None, tls=True): options of the test's "
                   "kstream_node fixture")


def _node_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("kstream_node")
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError("kstream_node takes keyword arguments only "
                                "(faults=..., tls=..., token=...)")
    return dict(marker.kwargs)


@pytest.fixture
def kstream_node(request: pytest.FixtureRequest) -> Iterator[FakeNode]:
    """A running fake node, on a thread of its own; its pods come from the markers.

    Yields:
        The :class:`kstream.testing.FakeNode` (``server``, ``token``, ``headers``,
        ``kubeconfig``, ``sessions``...).
    """
    from kstream._app.cli import parse_pod_option
    from kstream.testing import FakeNode

    node = FakeNode(**_node_options(request))
    option: list[str] = request.config.getoption("kstream_pods")
    for text in option:
        namespace, name, argv = parse_pod_option(text)
        node.add_pod(name, namespace=namespace, command=argv or None)
    # Closest first: reversed, so that a test's own marker wins over its class's.
    for marker in reversed(list(request.node.iter_markers("kstream_pod"))):
        if len(marker.args) != 1:
            raise pytest.UsageError("kstream_pod takes the pod's name, then keywords "
                                    "(command=..., handler=..., namespace=..., faults=...)")
        node.add_pod(marker.args[0], **marker.kwargs)
    with node.in_thread():
        yield node
