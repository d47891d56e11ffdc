"""The kstream_node fixture, written as a user of the kit writes tests.

Only public names are imported, and ``mypy --strict`` checks this file with the rest
of ``tests/`` (``make typecheck``): the kit's API is typed for its users.
"""

from __future__ import annotations

import asyncio

import pytest

import kstream.asyncio
from kstream.testing import FakeNode, Faults, PodExec, SessionRecord

pytest_plugins = ["pytester"]


async def shout(exec_: PodExec) -> int:
    """Upper-cases stdin; exits with the number of arguments."""
    async for chunk in exec_.stdin:
        await exec_.stdout.write(chunk.upper())
    return len(exec_.argv)


@pytest.mark.kstream_pod("shout", handler=shout)
def test_a_sync_test_with_a_handler_pod(kstream_node: FakeNode) -> None:
    async def call() -> kstream.asyncio.CompletedExec:
        return await kstream.asyncio.run(kstream_node.server, "default", "shout",
                                         ["a", "b"], input=b"quiet", headers=kstream_node.headers,
                                         ssl=kstream_node.ssl)

    done = asyncio.run(call())
    assert (done.returncode, done.stdout) == (2, b"QUIET")
    record: SessionRecord = kstream_node.sessions[0]
    assert (record.pod, record.argv, record.stdin_bytes) == ("shout", ("a", "b"), 5)


@pytest.mark.kstream_node(faults=Faults(refuse_transport="websocket"))
def test_node_options_and_the_default_pod(kstream_node: FakeNode) -> None:
    async def call() -> kstream.asyncio.CompletedExec:
        return await kstream.asyncio.run(kstream_node.server, "default", "demo",
                                         ["echo", "spdy"], headers=kstream_node.headers,
                                         ssl=kstream_node.ssl)

    assert asyncio.run(call()).stdout == b"spdy\n"
    assert kstream_node.sessions[0].transport == "spdy"


def test_the_option_declares_pods_for_every_node(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import asyncio
        import kstream.asyncio

        def test_pods(kstream_node):
            async def call():
                return await kstream.asyncio.run(
                    kstream_node.server, "tools", "box", ["echo", "ok"],
                    headers=kstream_node.headers, ssl=kstream_node.ssl)
            assert asyncio.run(call()).stdout == b"ok\\n"

        def test_unused():
            pass
    """)
    result = pytester.runpytest_subprocess("--kstream-pod", "tools/box=sleep 60", "-q")
    result.assert_outcomes(passed=2)
