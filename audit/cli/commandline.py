"""The command line a scan was asked with, as the report's cover shows it.

Rebuilt from what click parsed (only the parameters the user gave), not from
``sys.argv``, so a scan started by a program or a test records the same thing as one typed
at a shell. Secrets never enter the store: a password in a URI's user part and the values
of query parameters that name a secret are masked. A target is untrusted text; it is
quoted here for reading and escaped by the report, never run.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click
from click.core import ParameterSource

MASK = "***"
SECRET_NAME = re.compile(r"(pass|secret|token|key|credential|auth)", re.IGNORECASE)
"""A query parameter whose name says it holds a secret (``?token=…``, ``?api_key=…``)."""


def command_line(ctx: click.Context, program: str = "rempart") -> str:
    """``rempart scan tls://host --policy anssi-tls …``: the parameters given, masked."""
    words = [program, ctx.info_name or ctx.command.name or ""]
    for param in ctx.command.params:
        name = param.name or ""
        if ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            continue
        words += _words(param, ctx.params.get(name))
    return shlex.join(words)


def _words(param: click.Parameter, value: object) -> list[str]:
    """One parameter as it would be typed."""
    values = list(value) if isinstance(value, (tuple, list)) else [value]
    if isinstance(param, click.Argument):
        return [mask_secrets(str(v)) for v in values]
    option = param.opts[0] if param.opts else f"--{param.name}"
    if isinstance(param, click.Option) and param.is_flag:
        return [option] if value else list(param.secondary_opts[:1])
    return [word for v in values for word in (option, mask_secrets(str(v)))]


def mask_secrets(text: str) -> str:
    """``text`` with a URI's password and secret-named query values replaced by ***."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:{MASK}@{netloc.rpartition('@')[2]}"
        query = parts.query
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_NAME.search(k) for k, _ in pairs):
            masked = [(k, MASK if SECRET_NAME.search(k) else v) for k, v in pairs]
            query = urlencode(masked, safe="*,:/")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return text
