"""Turn an OpenStack answer or a transport failure into a :class:`Problem` with a reason.

As for AWS, a denied call never makes a fact false: the fact is unknown and the problem
names the call and the policy rule the audit role lacks. A 429 that outlasts the retries
is ``throttled``; a service absent from the catalogue, or an API the endpoint does not
implement (501), is ``not_implemented``; a 5xx, a refused connection or an unreadable
answer is ``unreachable``; a host the scope guard did not admit is ``refused``.
"""

from __future__ import annotations

from audit.models import Problem, Reason


class OutOfScope(Exception):
    """A request was about to leave for a host the scope guard did not admit."""


def status_problem(status: int, call: str, policy: str) -> Problem:
    """Classify an HTTP status other than 2xx for ``call`` (``network:GET /v2.0/ports``)."""
    if status in (401, 403):
        return Problem(
            Reason.ACCESS_DENIED, f"{call} denied (HTTP {status}): needs policy {policy}"
        )
    if status == 429:
        return Problem(Reason.THROTTLED, f"{call} throttled (HTTP 429) after retries")
    if status == 501:
        return Problem(Reason.NOT_IMPLEMENTED, f"{call}: the endpoint does not implement it")
    if status == 404:
        return Problem(Reason.NOT_FOUND, f"{call}: not found (HTTP 404)")
    if status >= 500:
        return Problem(Reason.UNREACHABLE, f"{call}: service error (HTTP {status})")
    return Problem(Reason.BUG, f"{call}: unexpected HTTP {status}")


def transport_problem(exc: BaseException, call: str) -> Problem:
    """A request that got no usable answer (keystoneauth's exceptions, or the guard's)."""
    from keystoneauth1 import exceptions as ksa

    if isinstance(exc, OutOfScope):
        return Problem(Reason.REFUSED, f"{call}: {exc}")
    if isinstance(exc, ksa.ConnectTimeout | ksa.RequestTimeout):
        return Problem(Reason.TIMEOUT, f"{call}: no answer in time")
    if isinstance(exc, ksa.Unauthorized):
        return Problem(Reason.ACCESS_DENIED, f"{call}: Keystone refused the credentials (401)")
    if isinstance(exc, ksa.HttpError):
        return status_problem(int(exc.http_status or 0), call, "-")
    if isinstance(exc, ksa.ClientException):  # refused, reset, TLS, unreadable
        return Problem(Reason.UNREACHABLE, f"{call}: endpoint unreachable ({type(exc).__name__})")
    return Problem(Reason.BUG, f"{call}: unexpected {type(exc).__name__}")
