"""What ``kstream serve`` answers of the Kubernetes API besides exec and attach.

kubectl asks more than an exec needs: ``get pods`` wants a server-side Table (READY,
STATUS, RESTARTS, AGE), ``logs`` reads a pod's log, ``debug`` and ``describe`` read the
whole pod object as an apiserver defaults it. This module holds those documents and
answers, so that the serve app only routes to :meth:`KubeApi.answer`:

* pods, listed and read, as ``PodList``/``Pod`` JSON or as a ``meta.k8s.io`` Table when the
  ``Accept`` header asks for one (kubectl's ``get``);
* ``pods/{name}/log``: the main process's retained output (:mod:`.podlog`), whole, tailed
  or followed;
* namespaces and (empty) events, which ``describe`` and ``get ns`` read;
* everything else -- other resources, writes, deletes, other subresources -- refused with
  an apiserver ``Status`` whose message says that kstream serve does not do it.

The resources in :data:`API_RESOURCES` include a few that are only refused (nodes,
services, ...): listed, kubectl sends the request and prints our message, instead of
"the server doesn't have a resource type".
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from .._http import query_bool
from .._status import STATUS_FAILURE, Status
from .podlog import PodLog
from .podports import port_documents

if TYPE_CHECKING:
    from ..asyncio import ServerRequest
    from .sandbox import Pod

__all__ = ["API_RESOURCES", "CONTAINER", "KubeApi", "human_duration", "pod_document",
           "wants_table"]

#: The one container of every pod.
CONTAINER: Final = "main"
#: How often a follower of a log checks that its client is still there, in seconds.
_FOLLOW_CHECK: Final = 1.0
#: Longest a watch lasts, in seconds (the apiserver's default request timeout).
_MAX_WATCH: Final = 1800
#: What serve does, for refusal messages.
_SERVED: Final = "it stands in for pods only (get, list, logs, exec, attach, port-forward)"

# Resources only listed to be refused with a clear message (name, kind, short names).
_REFUSED_RESOURCES: Final[tuple[tuple[str, str, list[str], bool], ...]] = (
    ("nodes", "Node", ["no"], False), ("services", "Service", ["svc"], True),
    ("configmaps", "ConfigMap", ["cm"], True), ("secrets", "Secret", [], True),
    ("persistentvolumeclaims", "PersistentVolumeClaim", ["pvc"], True),
    ("persistentvolumes", "PersistentVolume", ["pv"], False),
    ("endpoints", "Endpoints", ["ep"], True),
    ("serviceaccounts", "ServiceAccount", ["sa"], True),
    ("replicationcontrollers", "ReplicationController", ["rc"], True),
)

#: ``GET /api/v1``: what kubectl may ask for.
API_RESOURCES: Final = {
    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
    "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "list"], "shortNames": ["po"], "categories": ["all"]},
        {"name": "pods/attach", "singularName": "", "namespaced": True,
         "kind": "PodAttachOptions", "verbs": ["create", "get"]},
        {"name": "pods/exec", "singularName": "", "namespaced": True,
         "kind": "PodExecOptions", "verbs": ["create", "get"]},
        {"name": "pods/portforward", "singularName": "", "namespaced": True,
         "kind": "PodPortForwardOptions", "verbs": ["create", "get"]},
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["get"]},
        {"name": "namespaces", "singularName": "namespace", "namespaced": False,
         "kind": "Namespace", "verbs": ["get", "list"], "shortNames": ["ns"]},
        {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
         "verbs": ["list"], "shortNames": ["ev"]},
        *({"name": name, "singularName": kind.lower(), "namespaced": namespaced,
           "kind": kind, "verbs": ["get", "list"], "shortNames": short}
          for name, kind, short, namespaced in _REFUSED_RESOURCES),
    ],
}

_TABLE_VERSIONS: Final = ("v1", "v1beta1")


# --------------------------------------------------------------------------- documents


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_document(pod: Pod, started: float, uid: str) -> dict[str, Any]:
    """The pod as an apiserver returns it, with the fields the apiserver defaults.

    Running and ready, one container ``main`` running the pod's main process and
    declaring the pod's named ports (``spec.containers[0].ports``). Clients
    read fields a real apiserver always fills in (``kubectl debug`` reads
    ``spec.securityContext``), so they are all here.

    Args:
        pod: the sandbox pod.
        started: when the server started (``time.time()``), the pod's creation time.
        uid: the pod's uid.

    Returns:
        The ``v1.Pod`` document.
    """
    at = _timestamp(started)
    container = {
        "name": CONTAINER, "image": "kstream/sandbox", "command": list(pod.main.argv),
        "workingDir": pod.workdir, "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
        # stdin + stdinOnce: what the main process does (see sandbox); kubectl attach
        # reads ``tty`` to decide whether to use a terminal.
        "stdin": True, "stdinOnce": True, "tty": False,
    }
    if pod.ports:  # an apiserver omits an empty list
        container["ports"] = port_documents(pod.ports)
    conditions = [{"type": kind, "status": "True", "lastProbeTime": None,
                   "lastTransitionTime": at}
                  for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": uid,
                     "resourceVersion": "1", "creationTimestamp": at},
        "spec": {
            "containers": [container], "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default",
            "nodeName": "kstream", "securityContext": {},
            "schedulerName": "default-scheduler", "priority": 0,
            "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running", "conditions": conditions,
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "startTime": at,
            "containerStatuses": [{
                "name": CONTAINER, "state": {"running": {"startedAt": at}}, "lastState": {},
                "ready": True, "restartCount": 0, "image": "kstream/sandbox",
                "imageID": "kstream/sandbox", "containerID": f"kstream://{uid}",
                "started": True,
            }],
            "qosClass": "BestEffort",
        },
    }


def human_duration(seconds: float) -> str:
    """An age as kubectl shows it (apimachinery ``duration.HumanDuration``)."""
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 365 * 8 else f"{d // 365}y"


_MEDIA_PARAM: Final = re.compile(r"\s*([^=;\s]+)\s*=\s*\"?([^\";]*)\"?\s*")


def wants_table(headers: Sequence[tuple[str, str]]) -> str | None:
    """The Table version the ``Accept`` header asks for first, if it asks for one.

    kubectl sends ``application/json;as=Table;v=v1;g=meta.k8s.io,
    application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json``.

    Returns:
        ``"v1"`` or ``"v1beta1"``, or ``None`` when plain JSON is what the client wants.
    """
    for name, value in headers:
        if name.lower() != "accept":
            continue
        for media in value.split(","):
            kind, *params = media.split(";")
            if kind.strip() not in ("application/json", "*/*"):
                continue
            found = {}
            for param in params:
                match = _MEDIA_PARAM.fullmatch(param)
                if match:
                    found[match.group(1).lower()] = match.group(2)
            if "as" not in found:
                return None  # plain JSON comes first
            if found.get("as") == "Table" and found.get("g") == "meta.k8s.io" \
                    and found.get("v") in _TABLE_VERSIONS:
                return found["v"]
    return None


_POD_COLUMNS: Final = (
    ("Name", "name", 0, "Name must be unique within a namespace."),
    ("Ready", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "", 0, "The aggregate status of the containers in this pod."),
    ("Restarts", "", 0, "The number of times the containers in this pod have been "
                        "restarted and when the last container in this pod has restarted."),
    ("Age", "", 0, "CreationTimestamp is a timestamp representing the server time when "
                   "this object was created."),
    ("IP", "", 1, "IP address allocated to the pod. Routable at least within the cluster."),
    ("Node", "", 1, "NodeName is a request to schedule this pod onto a specific node."),
    ("Nominated Node", "", 1, "nominatedNodeName is set when this pod preempts other "
                              "pods on the node."),
    ("Readiness Gates", "", 1, "If specified, all readiness gates will be evaluated for "
                               "pod readiness."),
)


def pod_table(pods: Sequence[dict[str, Any]], version: str, now: float,
              started: float) -> dict[str, Any]:
    """Pods as the ``meta.k8s.io`` Table kubectl prints (the apiserver's pod columns)."""
    age = human_duration(now - started)
    rows = [{
        "cells": [pod["metadata"]["name"], "1/1", "Running", "0", age, "127.0.0.1",
                  "kstream", "<none>", "<none>"],
        "object": {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                   "metadata": pod["metadata"]},
    } for pod in pods]
    return {
        "kind": "Table", "apiVersion": f"meta.k8s.io/{version}",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": [{"name": name, "type": "string", "format": fmt,
                               "description": text, "priority": priority}
                              for name, fmt, priority, text in _POD_COLUMNS],
        "rows": rows,
    }


def _refusal(code: int, message: str, *, name: str = "", kind: str = "") -> Status:
    reason = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed"}[code]
    # Details always present: kubectl reads ``Details.Name`` of some errors unguarded.
    return Status(status=STATUS_FAILURE, message=message, reason=reason, code=code,
                  details_name=name, details_kind=kind, has_details=True)


# --------------------------------------------------------------------------- answers


class KubeApi:
    """Answers the pods API of ``kstream serve`` (everything but exec and attach).

    Args:
        pods: the pods, by ``(namespace, name)``.
        uids: their uids, by the same key.
        started: when the server started (``time.time()``).
    """

    def __init__(self, pods: Mapping[tuple[str, str], Pod], uids: Mapping[tuple[str, str], str],
                 started: float) -> None:
        self._pods = pods
        self._uids = uids
        self._started = started

    async def answer(self, request: ServerRequest, parts: list[str]) -> bool:
        """Answer ``request`` if it is for this module; return whether it did.

        Args:
            request: the (authenticated) request.
            parts: its path split on ``/`` (token prefix removed).

        Returns:
            ``False`` for exec, attach, port-forward and discovery (the caller's),
            ``True`` otherwise
            under ``/api/v1``.
        """
        if parts[:2] != ["api", "v1"] or len(parts) < 3:
            return False
        rest = parts[2:]
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, resource, tail = rest[1], rest[2], rest[3:]
        else:
            namespace, resource, tail = None, rest[0], rest[1:]
        if resource == "pods":
            if len(tail) == 2 and tail[1] in ("exec", "attach", "portforward"):
                return False
            await self._pods_route(request, namespace, tail)
        elif resource == "namespaces" and namespace is None:
            await self._namespaces(request, tail)
        elif resource == "events" and not tail:
            await self._read_only(request, {"kind": "EventList", "apiVersion": "v1",
                                            "metadata": {"resourceVersion": "1"}, "items": []})
        else:
            await _fail(request, _refusal(
                404, f"kstream serve does not serve {resource}; {_SERVED}",
                name=tail[0] if tail else "", kind=resource))
        return True

    async def _pods_route(self, request: ServerRequest, namespace: str | None,
                          tail: list[str]) -> None:
        if not tail:
            if request.method == "GET" and request.upgrade is None \
                    and query_bool(request.query, "watch"):
                await _watch(request)
                return
            pods = [pod for key, pod in self._pods.items()
                    if namespace is None or key[0] == namespace]
            await self._read_only(request, self._pod_list(pods), table=pods,
                                  verb="create or delete pods (declare them with "
                                       "`kstream serve --pod`)")
            return
        name = tail[0]
        pod = self._pods.get((namespace or "", name))
        if pod is None:
            await _fail(request, _refusal(404, f'pods "{name}" not found', name=name,
                                          kind="pods"))
            return
        if len(tail) == 1:
            await self._read_only(request, self._pod(pod), table=[pod],
                                  verb="change or delete pods (a pod lives as long as "
                                       "the server)")
        elif len(tail) == 2 and tail[1] == "log":
            await self._log(request, pod)
        else:
            what = {"ephemeralcontainers": "add ephemeral containers (kubectl debug: use "
                                           "kubectl exec instead)"}.get(
                tail[1], f"serve pods/{tail[1]}")
            await _fail(request, _refusal(405, f"kstream serve does not {what}; {_SERVED}",
                                          name=name, kind="pods"))

    async def _namespaces(self, request: ServerRequest, tail: list[str]) -> None:
        names = sorted({"default", *(key[0] for key in self._pods)})
        at = _timestamp(self._started)

        def namespace(name: str) -> dict[str, Any]:
            return {"kind": "Namespace", "apiVersion": "v1",
                    "metadata": {"name": name, "uid": f"kstream-namespace-{name}",
                                 "resourceVersion": "1", "creationTimestamp": at},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

        if not tail:
            await self._read_only(request, {
                "kind": "NamespaceList", "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": [namespace(name) for name in names]})
        elif len(tail) == 1 and tail[0] in names:
            await self._read_only(request, namespace(tail[0]))
        else:
            await _fail(request, _refusal(404, f'namespaces "{tail[0]}" not found',
                                          name=tail[0], kind="namespaces"))

    async def _read_only(self, request: ServerRequest, document: dict[str, Any], *,
                         table: Sequence[Pod] | None = None, verb: str = "change this") -> None:
        if request.upgrade is not None or request.method not in ("GET", "HEAD"):
            await _fail(request, _refusal(405, f"kstream serve does not {verb}; {_SERVED}"))
            return
        version = wants_table(request.headers) if table is not None else None
        if version is not None and table is not None:
            document = pod_table([self._pod(pod) for pod in table], version, time.time(),
                                 self._started)
        body = json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n"
        await request.respond(200, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))], body)

    def _pod(self, pod: Pod) -> dict[str, Any]:
        return pod_document(pod, self._started, self._uids[(pod.namespace, pod.name)])

    def _pod_list(self, pods: Sequence[Pod]) -> dict[str, Any]:
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                "items": [self._pod(pod) for pod in pods]}

    # ------------------------------------------------------------------ logs

    async def _log(self, request: ServerRequest, pod: Pod) -> None:
        if request.upgrade is not None or request.method not in ("GET", "HEAD"):
            await _fail(request, _refusal(405, "kstream serve does not change logs"))
            return
        query = request.query
        problem = _log_problem(query, pod)
        lines = _int_param(query, "tailLines")
        limit = _int_param(query, "limitBytes")
        if problem is None and (isinstance(lines, str) or isinstance(limit, str)):
            problem = lines if isinstance(lines, str) else str(limit)
        if problem is not None:
            await _fail(request, _refusal(400, problem, name=pod.name, kind="pods"))
            return
        assert not isinstance(lines, str) and not isinstance(limit, str)
        log: PodLog = pod.main.log
        text = log.tail(lines, limit)
        headers = [("Content-Type", "text/plain")]
        if not query_bool(query, "follow"):
            await request.respond(200, [*headers, ("Content-Length", str(len(text)))], text)
            return
        position = log.end
        runs = log.runs_ended
        budget = None if limit is None else limit - len(text)
        body = await request.respond_streaming(200, headers)
        body.write(text)
        # As `kubectl logs -f` on a container: output until the main process's run ends
        # (or the client leaves, or limitBytes is reached).
        while not body.closed and (budget is None or budget > 0):
            data, position = log.read(position)
            if budget is not None:
                data = data[:budget]
                budget -= len(data)
            body.write(data)
            await body.drain()
            if log.runs_ended != runs and log.end == position:
                break
            if log.end == position:
                await log.wait(_FOLLOW_CHECK)
        await body.aclose()


async def _watch(request: ServerRequest) -> None:
    """A watch of pods: they never change, so no event comes before the watch times out.

    As an apiserver, the watch ends after the client's ``timeoutSeconds`` (or ``timeout``),
    at most :data:`_MAX_WATCH` seconds, or when the client leaves.
    """
    seconds = float(_MAX_WATCH)
    for key, value in request.query:
        if key == "timeoutSeconds" and value.isdigit():
            seconds = min(seconds, int(value))
        elif key == "timeout" and (duration := _go_duration(value)) is not None:
            seconds = min(seconds, duration)
    body = await request.respond_streaming(200, [("Content-Type", "application/json")])
    deadline = time.monotonic() + seconds
    while not body.closed and (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, _FOLLOW_CHECK))
    await body.aclose()


_GO_DURATION: Final = re.compile(r"(?:([0-9]+(?:\.[0-9]*)?)(h|m|s|ms))+")
_GO_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _go_duration(text: str) -> float | None:
    """Seconds of a Go duration such as ``3s`` or ``1m30s`` (``None`` if not one)."""
    if not _GO_DURATION.fullmatch(text):
        return None
    return sum(float(number) * _GO_UNITS[unit]
               for number, unit in re.findall(r"([0-9]+(?:\.[0-9]*)?)(ms|h|m|s)", text))


def _log_problem(query: Sequence[tuple[str, str]], pod: Pod) -> str | None:
    container = next((value for key, value in query if key == "container"), "")
    if container not in ("", CONTAINER):
        return f"container {container} is not valid for pod {pod.name}"
    if query_bool(query, "previous"):
        return (f'previous terminated container "{CONTAINER}" in pod "{pod.name}" not found'
                " (kstream serve keeps the output of the current run only)")
    if any(key in ("sinceSeconds", "sinceTime") for key, _ in query) \
            or query_bool(query, "timestamps"):
        return ("kstream serve does not keep the times of log lines: --since, --since-time "
                "and --timestamps are not supported")
    return None


def _int_param(query: Sequence[tuple[str, str]], name: str) -> int | str | None:
    """An integer query parameter; a message (str) when it is not one."""
    value = next((value for key, value in query if key == name), None)
    if value is None:
        return None
    if not re.fullmatch(r"-?[0-9]{1,18}", value):
        return f"invalid {name}: {json.dumps(value)[:80]}"
    return int(value)


async def _fail(request: ServerRequest, status: Status) -> None:
    if request.upgrade is not None:
        await request.reject(status.code, status.message)
        return
    body = status.encode(kind=True) + b"\n"
    await request.respond(status.code, [("Content-Type", "application/json"),
                                        ("Content-Length", str(len(body)))], body)
