"""A rogue Dask worker for the trust tests, preloaded into a worker process.

``dask_setup`` (called by Dask's preload, so only in the worker, never on import)
replaces rempart's two worker-side entry points, which tasks name by reference, with
versions that do what the JSON control file at ``$REMPART_ROGUE_CONTROL`` says:

- ``probe``: ``honest`` | ``pickle`` (answer with an object whose unpickling writes the
  marker) | ``raise`` (raise such an exception) | ``metaclass`` (answer with an object of
  a class rebuilt on unpickling by a metaclass that writes the marker);
- ``job``: ``honest`` | ``pickle`` | ``other_target`` (about ``sim://zz``) |
  ``other_key`` (keyed as another of ``others``) | ``bad_type``; all forge passing facts.

The marker is written only in the process whose pid the control file names (the
scanning process), so code the worker runs on itself does not count.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from audit.models import Observation, Resource
from audit.scale import executors
from audit.scale.wire import encode_observation

HONEST_RUN_JOB = executors.run_job


def control() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(os.environ["REMPART_ROGUE_CONTROL"]).read_text())
    return data


def mark(path: str, pid: int) -> Exception:
    """What a malicious pickle runs: proof of code execution in process ``pid``.

    It returns an exception so that the pickle survives the round trip Dask's worker
    makes with a task's error before sending it (tblib wraps our reducer)."""
    if os.getpid() == pid:
        Path(path).write_text(f"code ran in {pid}")
    return RuntimeError("pwned")


class Payload:
    """An object whose unpickling calls :func:`mark`."""

    def __init__(self, path: str, pid: int) -> None:
        self.path, self.pid = path, pid

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return (mark, (self.path, self.pid))


class PayloadError(Exception):
    """An exception whose unpickling calls :func:`mark`."""

    def __init__(self, path: str, pid: int) -> None:
        super().__init__("rogue")
        self.path, self.pid = path, pid

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return (mark, (self.path, self.pid))


def sneaky(path: str, pid: int) -> object:
    """An instance of a class defined here, so it is pickled by value with its metaclass."""

    class Meta(type):
        def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> None:
            super().__init__(name, bases, ns)
            mark(path, pid)

    return Meta("Sneaky", (), {})()


def rogue_version() -> Any:
    mode, path, pid = control()["probe"], control()["marker"], control()["pid"]
    if mode == "pickle":
        return Payload(path, pid)
    if mode == "raise":
        raise PayloadError(path, pid)
    if mode == "metaclass":
        return sneaky(path, pid)
    from audit import __version__

    return __version__.encode()


def rogue_job(fn: Any, *args: Any) -> Any:
    settings = control()
    mode = settings["job"]
    if mode == "pickle":
        return Payload(settings["marker"], settings["pid"])
    observation: Observation = fn(*args)
    if mode == "other_target":
        observation = Observation(args[1].__class__(**{**vars(args[1]), "uri": "sim://zz"}))
    elif mode == "other_key":
        others = [uri for uri in settings["others"] if uri != args[1].uri]
        observation = _rekeyed(observation, others[0])
    elif mode == "bad_type":
        observation = _retyped(observation, "aws.account")
    return encode_observation(observation) if mode != "honest" else HONEST_RUN_JOB(fn, *args)


def _rekeyed(observation: Observation, key: str) -> Observation:
    resources = tuple(_with(r, key=key) for r in observation.resources)
    return Observation(observation.target, resources, observation.problems)


def _retyped(observation: Observation, type_: str) -> Observation:
    resources = tuple(_with(r, type=type_) for r in observation.resources)
    return Observation(observation.target, resources, observation.problems)


def _with(resource: Resource, **changes: Any) -> Resource:
    return Resource(**{**vars(resource), "facts": {"port": 443, "tags": ["owner"]}, **changes})


def dask_setup(worker: Any) -> None:
    """Dask preload hook: turn this worker rogue."""
    executors.worker_version = rogue_version
    executors.run_job = rogue_job


def rogue_serve(conn: Any, threads: int) -> None:
    """A rogue worker process for ``--executor processes``: the real serving loop, with
    the job runner swapped for :func:`rogue_job` (a Python object goes back pickled)."""
    import pickle

    from audit.scale import processes

    def forged(fn: Any, *args: Any) -> bytes:
        result = rogue_job(fn, *args)
        return result if isinstance(result, bytes) else pickle.dumps(result)

    setattr(processes, "run_job", forged)  # the module attribute the serving loop calls
    processes.serve(conn, threads)
