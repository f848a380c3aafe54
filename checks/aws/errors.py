"""Turn what botocore raises into a :class:`Problem` with a reason.

A denied call never makes a fact false: it makes it *unknown*, and the problem names the
IAM action that was missing so the reader can fix the audit role rather than the account.
Throttling that outlasts the adaptive retries is ``throttled``; an operation a provider
does not implement is ``not_implemented``; a transport failure is ``unreachable`` or
``timeout``.
"""

from __future__ import annotations

from audit.models import Problem, Reason

DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthorizationErrorException",
        "Forbidden",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
THROTTLED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "RequestLimitExceededException",
        "LimitExceededException",
        "EC2ThrottledException",
    }
)
UNSUPPORTED_CODES = frozenset(
    {"NotImplemented", "InvalidAction", "UnknownOperation", "UnknownOperationException"}
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    """The HTTP status of a ClientError (0 when unknown)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def problem_from(exc: BaseException, action: str) -> Problem:
    """Classify one failed call of ``action`` (an IAM action such as ``s3:GetBucketPolicy``)."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.ClientError):
        return _client_problem(exc, action)
    if isinstance(exc, bce.ConnectTimeoutError | bce.ReadTimeoutError):
        return Problem(Reason.TIMEOUT, f"{action}: no answer in time ({type(exc).__name__})")
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectionError):
        return Problem(Reason.UNREACHABLE, f"{action}: endpoint unreachable")
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return Problem(Reason.ACCESS_DENIED, "no AWS credentials found")
    return _other_problem(exc, action)


def _other_problem(exc: BaseException, action: str) -> Problem:
    """An answer botocore could not parse is the endpoint's fault (cut or garbled), not ours."""
    from botocore import exceptions as bce
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ResponseParserError):
        return Problem(Reason.UNREACHABLE, f"{action}: unreadable answer (truncated or malformed)")
    if isinstance(exc, bce.BotoCoreError):
        return Problem(Reason.BUG, f"{action}: {type(exc).__name__}")
    return Problem(Reason.BUG, f"{action}: unexpected {type(exc).__name__}")


def _client_problem(exc: BaseException, action: str) -> Problem:
    """Map a service error answer to a reason, keeping the message short and useful."""
    code = error_code(exc)
    status = http_status(exc)
    if code in DENIED_CODES or status == 403:
        return Problem(Reason.ACCESS_DENIED, f"{action} denied: needs {action}")
    if code in THROTTLED_CODES or status == 429:
        return Problem(Reason.THROTTLED, f"{action} throttled after adaptive retries")
    if code in UNSUPPORTED_CODES or status == 501 or (status == 404 and code.isdigit()):
        return Problem(Reason.NOT_IMPLEMENTED, f"{action}: the endpoint does not implement it")
    if status >= 500:
        return Problem(Reason.UNREACHABLE, f"{action}: service error (HTTP {status})")
    return Problem(Reason.BUG, f"{action}: unexpected error {code or status}")
