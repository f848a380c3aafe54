"""Regular expressions for the policy language, in linear time.

A policy's ``matches`` pattern meets values a target chose (certificate subjects,
banners, tags). With a backtracking engine such as Python's ``re``, a pattern like
``^([A-Za-z=, ]+)+!$`` against a crafted issuer runs for minutes: one rule could hold
a scan hostage. RE2 (the ``google-re2`` package) matches in time linear in the subject,
whatever the pattern, and refuses the constructs that need backtracking
(backreferences, lookaround) when the policy loads, so the author learns at
``policy validate`` rather than in the middle of a scan.

The subject is also capped: linear is still proportional, and no fact a check emits
is legitimately longer than :data:`MAX_SUBJECT` characters. A longer one makes the
condition undecidable (the rule is ``error``), never false.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MAX_SUBJECT = 1 << 20
"""Longest text (in characters) a ``matches`` condition looks at: 1 Mi."""

MAX_PATTERN = 4096
"""Longest pattern accepted; RE2 also bounds the memory of the compiled program."""


class PatternError(ValueError):
    """A pattern RE2 cannot compile (bad syntax, or a construct that needs backtracking)."""


class SubjectTooLong(ValueError):
    """The text to match is longer than :data:`MAX_SUBJECT`."""


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """Compile ``pattern`` with RE2 once; PatternError with RE2's reason otherwise."""
    import re2

    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"pattern longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise PatternError(_reason(exc)) from None


def _reason(exc: Exception) -> str:
    """RE2 reports its errors as bytes; a user reads text."""
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return f"{detail} (RE2 syntax: no backreferences or lookaround)"


def search(pattern: str, subject: str) -> bool:
    """Whether ``pattern`` occurs in ``subject``; PatternError or SubjectTooLong otherwise.

    Short subjects are answered from a cache: a scan matches the same few patterns
    against the same names (cipher suites, protocol names) on every endpoint, and each
    RE2 call costs tens of microseconds in its Python wrapper.
    """
    if len(subject) > MAX_SUBJECT:
        raise SubjectTooLong(
            f"the value is {len(subject):,} characters long, above the {MAX_SUBJECT:,} "
            "a pattern is matched against"
        )
    if len(subject) <= _CACHED_SUBJECT:
        return _search_cached(pattern, subject)
    return compile_pattern(pattern).search(subject) is not None


_CACHED_SUBJECT = 256
"""Longest subject whose answer is cached (names, not documents)."""


@lru_cache(maxsize=16384)
def _search_cached(pattern: str, subject: str) -> bool:
    return compile_pattern(pattern).search(subject) is not None
