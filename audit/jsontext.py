"""JSON text for the store's columns and the terminal: orjson, with the standard codec
where orjson would refuse or change a value.

orjson takes a tenth of the standard encoder's time on the small documents a finding
carries (evidence, control maps, trail details), which is most of the cost of storing
or printing 100,000 of them. It refuses integers past 64 bits and reads them back as
floats; a certificate serial number is such an integer and must come back exact, so
those documents go through the standard codec both ways. Datetimes and dataclasses are
written as ``str()`` gives them, as the standard encoder with ``default=str`` did.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_COMPACT = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))
_INDENTED = json.JSONEncoder(default=str, ensure_ascii=False, indent=2)
_LONG_NUMBER = re.compile(r"\d{19}")


def dumps(value: Any) -> str:
    """Compact JSON text (no spaces)."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS).decode()
    except TypeError:
        return _COMPACT.encode(value)


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, for a file: orjson's own output, never decoded to text
    and encoded back (a report of 15,000 findings is 15 MB). Where orjson refuses, the
    standard encoder, and a lone surrogate (which UTF-8 cannot hold) is then written as
    its JSON escape ``\\udcXX``: the file stays UTF-8 that a parser takes."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except TypeError:
        return _COMPACT.encode(value).encode("utf-8", "backslashreplace")


def dumps_indented(value: Any) -> str:
    """JSON text indented by two spaces, for people reading a terminal."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS | orjson.OPT_INDENT_2).decode()
    except TypeError:
        return _INDENTED.encode(value)


def loads(text: str) -> Any:
    """A value back from JSON text; the standard decoder when the text holds a run of 19
    digits or more (a number orjson would read as a float), or NaN from an older store."""
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
