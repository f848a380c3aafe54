"""Report translations: gettext catalogs shipped as ``.po`` files, compiled at load time.

Template strings are written in English (the msgid) and translated through
``reports/locale/<lang>/LC_MESSAGES/rempart.po``. The ``.po`` files are read with Babel
and compiled in memory, so an installed wheel needs no build step and no ``.mo`` files.
French is the default language of every report; English is the identity catalog.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "rempart"
DEFAULT_LANG = "fr"
SOURCE_LANG = "en"
"""The language templates and rules are written in (the msgids): it needs no catalog."""


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages reports speak: the default first, then every shipped catalog's.

    Read from ``reports/locale/`` (once), so a language is added by adding its ``.po``
    file: no option, column or list elsewhere names them.
    """
    found = {p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    found |= {DEFAULT_LANG, SOURCE_LANG}
    return (DEFAULT_LANG, *sorted(found - {DEFAULT_LANG}))


def normalise_lang(lang: str | None) -> str:
    """A shipped language from what a user typed (``en_GB``, ``FR``…); the default
    (French) otherwise."""
    short = (lang or DEFAULT_LANG).lower().replace("-", "_").split("_")[0]
    return short if short in languages() else DEFAULT_LANG


def catalog_path(lang: str) -> Path:
    """The ``.po`` file of a language."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (identity when the language has no catalog)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    path = catalog_path(normalise_lang(lang))
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=normalise_lang(lang))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


PERCENT_SIGN = {"fr": "\u00a0%", "en": "%"}
"""French sets the sign apart with a no-break space (the one PDF fonts all carry)."""


def format_percent(value: float | None, lang: str) -> str:
    """A percentage as the reader writes it (« 88,8 % », "88.8%"); ``—`` when none."""
    from babel.numbers import format_decimal

    if value is None:
        return "—"
    lang = normalise_lang(lang)
    return f"{format_decimal(value, format='#,##0.#', locale=lang)}{PERCENT_SIGN[lang]}"
