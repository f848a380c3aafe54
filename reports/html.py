"""The committee report as one self-contained HTML file (French by default).

Jinja2 with autoescaping everywhere and ``jinja2.ext.i18n`` bound to our gettext
catalogs (:mod:`reports.i18n`); inline CSS and inline SVG charts, no JavaScript, no
network access, A4 print layout (the cover and the annexes start a page; sections follow
one another, so a short section leaves no blank page). Target data is never marked safe:
the templates only ever see it through autoescaped expressions.

The glossary lists only the terms the report uses, so the page is rendered once, its
text searched for the terms, then rendered again with them.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import printable
from reports.glossary import used_terms, visible_text
from reports.i18n import format_percent, normalise_lang, translations
from reports.wording import parts


@functools.cache
def environment(lang: str) -> Any:
    """The Jinja2 environment of one language (built once per process)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["day"] = functools.partial(format_day, lang=lang)
    env.filters["shortday"] = functools.partial(format_day, lang=lang, width="short")
    env.filters["num"] = functools.partial(format_number, lang=lang)
    env.filters["pct"] = functools.partial(format_percent, lang=lang)
    return env


def _visible(value: Any) -> Any:
    """Every plain string a template outputs gets its control characters escaped."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


SHORT_DAY = {"fr": "dd/MM/yyyy", "en": "yyyy-MM-dd"}
"""Numeric dates for tables: « 03/12/2026 » in French; ISO in English, which no reader
mistakes for day-month or month-day."""


def format_day(value: date | str | None, lang: str, width: str = "medium") -> str:
    """A date as the reader writes it (« 3 déc. 2026 », or « 03/12/2026 » with
    ``width="short"``); ``—`` when none."""
    from babel.dates import format_date

    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return value
    else:
        day = value
    pattern = SHORT_DAY.get(lang, "yyyy-MM-dd") if width == "short" else "medium"
    return str(format_date(day, format=pattern, locale=lang))


def format_number(value: float | int | None, lang: str, digits: int = 1) -> str:
    """A number with the reader's decimal separator; ``—`` when there is none."""
    from babel.numbers import format_decimal

    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return str(format_decimal(value, format=pattern, locale=lang))


def render_html(data: ReportData, options: RenderOptions) -> str:
    """The committee report as an HTML string."""
    from reports import committee

    lang = normalise_lang(options.lang)
    model = committee.build(data, options, lang)
    template = environment(lang).get_template("committee.html.j2")
    context = {
        "c": model,
        "chart": committee.trend_chart(model.trend),
        "lang": lang,
        "parts": parts,
    }
    draft = str(template.render(**context, glossary=[]))
    terms = used_terms(visible_text(draft), lang)
    return str(template.render(**context, glossary=terms)) if terms else draft


def render(data: ReportData, options: RenderOptions) -> bytes:
    """The committee report as UTF-8 HTML."""
    return render_html(data, options).encode()


RENDERER = Renderer(
    name="html",
    extensions=(".html", ".htm"),
    description="Committee report, self-contained HTML (print-ready, fr/en)",
    render=render,
)
