"""The committee report as one self-contained HTML file (French by default).

Jinja2 with autoescaping everywhere and ``jinja2.ext.i18n`` bound to our gettext
catalogs (:mod:`reports.i18n`); inline CSS and inline SVG charts, no JavaScript, no
network access, A4 print layout with page breaks. Target data is never marked safe: the
templates only ever see it through autoescaped expressions.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from audit.reporting import Renderer, RenderOptions, ReportData
from reports._text import printable
from reports.i18n import format_percent, normalise_lang, translations


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
    env.filters["num"] = functools.partial(format_number, lang=lang)
    env.filters["pct"] = functools.partial(format_percent, lang=lang)
    return env


def _visible(value: Any) -> Any:
    """Every plain string a template outputs gets its control characters escaped."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


def format_day(value: date | str | None, lang: str) -> str:
    """A date as the reader writes it (« 1 juin 2024 », "Jun 1, 2024"); ``—`` when none."""
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
    return str(format_date(day, format="medium", locale=lang))


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
    return str(
        template.render(
            c=model,
            chart=committee.trend_chart(model.trend),
            evidence=committee.evidence,
            lang=lang,
        )
    )


def render(data: ReportData, options: RenderOptions) -> bytes:
    """The committee report as UTF-8 HTML."""
    return render_html(data, options).encode()


RENDERER = Renderer(
    name="html",
    extensions=(".html", ".htm"),
    description="Committee report, self-contained HTML (print-ready, fr/en)",
    render=render,
)
