"""The JSON form in which an observation travels from a cluster worker to the scanning host.

Dask ships a task's return value as whatever object the worker hands it, and the
client rebuilds it with pickle by default: a worker could return an object whose
unpickling runs code here. So the worker-side wrapper encodes the
:class:`~audit.models.Observation` as JSON bytes, the client accepts only msgpack
from the cluster (bytes and strings, no objects), and this module rebuilds the
dataclasses field by field, refusing anything of the wrong shape. Plain JSON cannot
carry code; what it carries can still be a lie, which :mod:`audit.scale.vetting` narrows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from audit.models import JSONValue, Observation, Problem, Reason, Resource, Target


class WireError(ValueError):
    """A payload that is not an observation in our JSON form."""


# --- encode (on the worker) ---------------------------------------------------------------


def encode_observation(observation: Observation) -> bytes:
    """The observation as JSON bytes; raises TypeError/ValueError on a non-JSON fact."""
    return json.dumps(
        {
            "target": _target_json(observation.target),
            "resources": [_resource_json(r) for r in observation.resources],
            "problems": [_problem_json(p) for p in observation.problems],
            "duration_s": observation.duration_s,
        },
        allow_nan=False,
        separators=(",", ":"),
    ).encode()


def _target_json(target: Target) -> dict[str, JSONValue]:
    return {
        "uri": target.uri,
        "scheme": target.scheme,
        "host": target.host,
        "port": target.port,
        "params": [list(pair) for pair in target.params],
        "system": target.system,
        "from_command_line": target.from_command_line,
        "addresses": list(target.addresses),
    }


def _resource_json(resource: Resource) -> dict[str, JSONValue]:
    return {
        "type": resource.type,
        "key": resource.key,
        "target": resource.target,
        "system": resource.system,
        "facts": dict(resource.facts),
        "unknown": {name: _problem_json(p) for name, p in resource.unknown.items()},
    }


def _problem_json(problem: Problem) -> dict[str, JSONValue]:
    return {
        "reason": problem.reason.value,
        "message": problem.message,
        "resource_type": problem.resource_type,
        "key": problem.key,
        "facts": list(problem.facts),
    }


# --- decode (on the scanning host) --------------------------------------------------------


def decode_observation(payload: object) -> Observation:
    """Rebuild an observation from a worker's bytes; WireError when anything is off."""
    if not isinstance(payload, bytes):
        raise WireError(f"expected JSON bytes, got {type(payload).__name__}")
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not JSON ({type(exc).__name__})") from None
    data = _mapping(doc, "observation")
    duration = data.get("duration_s", 0.0)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise WireError("duration_s is not a number")
    return Observation(
        target=_target(data.get("target")),
        resources=tuple(_resource(r) for r in _list(data.get("resources"), "resources")),
        problems=tuple(_problem(p) for p in _list(data.get("problems"), "problems")),
        duration_s=float(duration),
    )


def _target(value: object) -> Target:
    data = _mapping(value, "target")
    port = data.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise WireError("target.port is not an integer")
    pairs = [_strings(p, "target.params") for p in _list(data.get("params"), "target.params")]
    if any(len(pair) != 2 for pair in pairs):
        raise WireError("target.params holds something other than name/value pairs")
    return Target(
        uri=_str(data.get("uri"), "target.uri"),
        scheme=_str(data.get("scheme"), "target.scheme"),
        host=_str(data.get("host"), "target.host"),
        port=port,
        params=tuple((pair[0], pair[1]) for pair in pairs),
        system=_str(data.get("system"), "target.system"),
        from_command_line=data.get("from_command_line") is True,
        addresses=_strings(data.get("addresses"), "target.addresses"),
    )


def _resource(value: object) -> Resource:
    data = _mapping(value, "resource")
    facts = _mapping(data.get("facts"), "resource.facts")
    unknown = _mapping(data.get("unknown", {}), "resource.unknown")
    return Resource(
        type=_str(data.get("type"), "resource.type"),
        key=_str(data.get("key"), "resource.key"),
        target=_str(data.get("target"), "resource.target"),
        system=_str(data.get("system"), "resource.system"),
        facts=dict(facts),
        unknown={name: _problem(p) for name, p in unknown.items()},
    )


def _problem(value: object) -> Problem:
    data = _mapping(value, "problem")
    try:
        reason = Reason(_str(data.get("reason"), "problem.reason"))
    except ValueError:
        raise WireError(f"unknown problem reason {data.get('reason')!r}") from None
    return Problem(
        reason=reason,
        message=_str(data.get("message"), "problem.message"),
        resource_type=_optional_str(data.get("resource_type"), "problem.resource_type"),
        key=_optional_str(data.get("key"), "problem.key"),
        facts=_strings(data.get("facts", []), "problem.facts"),
    )


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise WireError(f"{what} is not an object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise WireError(f"{what} is not a list")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise WireError(f"{what} is not a string")
    return value


def _optional_str(value: object, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _strings(value: object, what: str) -> tuple[str, ...]:
    return tuple(_str(item, what) for item in _list(value, what))
