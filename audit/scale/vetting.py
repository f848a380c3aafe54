"""Refuse an observation that does not belong to the target it was asked for.

The engine stores what comes back from a job; on a cluster, that is what a worker
chose to send. A finding's identity is its rule id and its resource key, so a result
naming another target, another target's key or a resource type the family never
produces could overwrite, resolve or fake findings elsewhere in the store. Such a
result is replaced by one problem (reason ``bug``, "result refused: …"), so every rule
of the target ends as ``error``: never a pass, and ``--fail-on`` fails closed.

This narrows what a rogue worker can forge; it cannot tell a true fact from a false
one about the target's own resources.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckFamily


def vet(
    observation: object, target: Target, family: CheckFamily, scan_uris: Collection[str]
) -> Observation:
    """The observation if it is one for ``target``; otherwise a refusal as a problem."""
    refusal = next(_refusals(observation, target, family, scan_uris), None)
    if refusal is None and isinstance(observation, Observation):
        return observation
    problem = Problem(Reason.BUG, f"result refused: {refusal}")
    return Observation(target, problems=(problem,))


def _refusals(
    observation: object, target: Target, family: CheckFamily, scan_uris: Collection[str]
) -> Iterator[str]:
    if not isinstance(observation, Observation):
        yield f"a {type(observation).__name__}, not an observation"
        return
    if observation.target != target:
        yield f"it is about {_uri(observation.target)!r}, not {target.uri!r}"
    types = frozenset(family.resource_type_names())
    for resource in observation.resources:
        yield from _resource_refusals(resource, target, family, types, scan_uris)
    for problem in observation.problems:
        yield from _problem_refusals(problem, target, family, types, scan_uris)


def _resource_refusals(
    resource: object,
    target: Target,
    family: CheckFamily,
    types: frozenset[str],
    scan_uris: Collection[str],
) -> Iterator[str]:
    if not isinstance(resource, Resource):
        yield f"a {type(resource).__name__} among its resources"
        return
    if resource.type not in types:
        yield f"resource type {resource.type!r} is not one {family.name!r} produces"
    if resource.target != target.uri or resource.system != target.system:
        yield f"resource {resource.key!r} names target {resource.target!r}"
    yield from _key_refusals(resource.key, target, scan_uris)


def _problem_refusals(
    problem: object,
    target: Target,
    family: CheckFamily,
    types: frozenset[str],
    scan_uris: Collection[str],
) -> Iterator[str]:
    if not isinstance(problem, Problem) or not isinstance(problem.reason, Reason):
        yield f"a {type(problem).__name__} among its problems"
        return
    if problem.resource_type is not None and problem.resource_type not in types:
        yield f"problem about type {problem.resource_type!r}, not one {family.name!r} produces"
    if problem.key is not None:
        yield from _key_refusals(problem.key, target, scan_uris)


def _key_refusals(key: object, target: Target, scan_uris: Collection[str]) -> Iterator[str]:
    """A key must be a non-empty string, and not the key of another target of the scan."""
    if not isinstance(key, str) or not key:
        yield "a resource key that is not a non-empty string"
    elif key != target.uri and key in scan_uris:
        yield f"key {key!r} is another target of this scan"


def _uri(value: object) -> str:
    return value.uri if isinstance(value, Target) else type(value).__name__
