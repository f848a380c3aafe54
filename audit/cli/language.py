"""The ``--lang`` option's type: the languages the reports ship, found when it parses.

No command lists languages: the choices are the report catalogs there are
(:func:`reports.i18n.languages`), read only when ``--lang`` is given or help is shown,
so ``rempart --help`` imports nothing of the reports.
"""

from __future__ import annotations

from typing import Any

import click


class Language(click.ParamType[str]):
    """A language code the reports speak (``fr``, ``en``…), case-insensitive."""

    name = "language"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """``[fr|en]`` in help, from the shipped catalogs."""
        return "[" + "|".join(_languages()) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The code, lower-cased; a language with no catalog is a usage error (exit 2)."""
        code = str(value).strip().lower()
        if code not in _languages():
            self.fail(f"{value!r} is not one of {', '.join(_languages())}", param, ctx)
        return code


def _languages() -> tuple[str, ...]:
    from reports.i18n import languages

    return languages()


LANGUAGE = Language()
