"""Named container ports: kubectl's rewriting of ``[LOCAL:]REMOTE`` with the pod it read
(:mod:`kstream._app.namedports`), and the ports a served pod may declare
(:mod:`kstream._app.podports`). The whole commands are in ``test_portforward_cli*.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kstream._app.kubeapi import pod_document
from kstream._app.namedports import container_port, resolve_named_ports, split_port
from kstream._app.podports import PodPortOption, check_ports, parse_pod_port_option
from kstream._app.sandbox import Pod

#: A pod as an apiserver returns it: two containers, the second with the named ports.
POD: dict[str, Any] = {
    "metadata": {"name": "web"},
    "spec": {"containers": [
        {"name": "sidecar", "ports": [{"containerPort": 9000, "protocol": "TCP"}]},
        {"name": "app", "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "http", "containerPort": 8081, "protocol": "TCP"},
        ]},
    ]},
}


@pytest.mark.parametrize(("spec", "expected"), [
    ("http", "8080"),               # local omitted: the local port is the number too
    (":http", ":8080"),             # a free local port
    ("9999:http", "9999:8080"),
    ("80", "80"), ("8080:80", "8080:80"), (":80", ":80"),  # numbers are left as they are
    ("1:+80", "1:+80"),             # Go's Atoi takes "+80": left for parse_port to refuse
    ("8080:80:90", "8080"),         # kubectl's splitPort keeps the first field
])
def test_names_become_numbers_as_kubectl_writes_them(spec: str, expected: str) -> None:
    assert resolve_named_ports([spec], POD) == [expected]


def test_the_first_port_of_that_name_in_any_container() -> None:
    assert container_port(POD, "http") == 8080
    # A port without a name is named "" (kubectl compares Go's zero value).
    assert resolve_named_ports(["7:"], POD) == ["7:9000"]


@pytest.mark.parametrize(("spec", "name"), [
    ("metrics", "metrics"), ("80:metrics", "metrics"), ("x:y:z", "x"),
    ("80:0x50", "0x50"), ("99999999999999999999", "99999999999999999999"),
])
def test_a_missing_name_is_kubectls_error(spec: str, name: str) -> None:
    with pytest.raises(ValueError) as caught:
        resolve_named_ports(["80", spec], POD)
    assert str(caught.value) == f"Pod 'web' does not have a named port '{name}'"


def test_a_udp_only_port_is_refused_as_kubectl_does() -> None:
    with pytest.raises(ValueError, match=r"^UDP protocol is not supported for dns$"):
        resolve_named_ports(["dns"], POD)
    with pytest.raises(ValueError, match=r"^UDP protocol is not supported for 53$"):
        resolve_named_ports(["5353:53"], POD)


def test_a_pod_without_containers_has_no_named_ports() -> None:
    with pytest.raises(ValueError, match=r"^Pod '' does not have a named port 'http'$"):
        resolve_named_ports(["http"], {"spec": {"containers": "junk"}})


def test_split_port() -> None:
    assert split_port("1:2") == ("1", "2")
    assert split_port("http") == ("http", "http")
    assert split_port("1:2:3") == ("1", "1")


# --------------------------------------------------------------------------- declaring


def test_declared_ports_are_in_the_pod_document() -> None:
    async def documents() -> list[dict[str, Any]]:
        pods = [Pod("web", "default", ["cat"],
                    ports=check_ports({"http": 8080, "metrics": 9090})),
                Pod("bare", "default", ["cat"])]
        try:
            return [pod_document(pod, 0.0, "uid")["spec"]["containers"][0] for pod in pods]
        finally:
            for pod in pods:
                await pod.close()

    declared, bare = asyncio.run(documents())
    assert declared["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert "ports" not in bare  # as an apiserver, no empty list


@pytest.mark.parametrize(("ports", "message"), [
    ({"http": 0}, "port http = 0 must be between 1 and 65535, inclusive"),
    ({"http": 65536}, "port http = 65536 must be between 1 and 65535, inclusive"),
    ({"http": True}, "port http = True must be between 1 and 65535, inclusive"),
    ({"": 80}, "a port name is required"),
    ({"Http": 80}, "port name 'Http' must contain only alpha-numeric characters (a-z, "
                   "0-9), and hyphens (-)"),
    ({"a" * 16: 80}, f"port name '{'a' * 16}' must be no more than 15 characters"),
    ({"8080": 80}, "port name '8080' must contain at least one letter (a-z)"),
    ({"a--b": 80}, "port name 'a--b' must not contain consecutive hyphens"),
    ({"-web": 80}, "port name '-web' must not begin or end with a hyphen"),
    ([("web", 80), ("web", 81)], "port name 'web' is declared twice"),
])
def test_declared_ports_are_checked_as_the_apiserver_does(ports: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_ports(ports)
    assert str(caught.value) == message


def test_the_pod_port_option() -> None:
    assert parse_pod_port_option("web=http:8080") == PodPortOption("default", "web",
                                                                     "http", 8080)
    assert parse_pod_port_option("team/web=h-2:1") == PodPortOption("team", "web", "h-2", 1)
    for text, message in [("web", "expected [NAMESPACE/]POD=NAME:PORT"),
                          ("web=http", "expected [NAMESPACE/]POD=NAME:PORT"),
                          ("=http:80", "expected [NAMESPACE/]POD=NAME:PORT"),
                          ("web=http:x", "port 'x' is not a number"),
                          ("web=http:99999", "must be between 1 and 65535")]:
        with pytest.raises(ValueError, match=message.replace("[", r"\[")):
            parse_pod_port_option(text)
