"""The committee report as PDF, printed from the HTML by WeasyPrint (extra ``pdf``).

WeasyPrint is optional: without it the renderer raises :class:`DependencyError` with the
command that installs it. The HTML has no external resource, so the PDF renderer is
given no base URL and fetches nothing.
"""

from __future__ import annotations

from audit.errors import DependencyError
from audit.reporting import Renderer, RenderOptions, ReportData

INSTALL_HINT = (
    "PDF reports need WeasyPrint: pip install 'rempart[pdf]' "
    "(and the Pango libraries, e.g. apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
)


def _weasyprint() -> object:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango shared libraries missing
        raise DependencyError(f"{INSTALL_HINT} ({exc})") from None
    return weasyprint


def _refuse_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    """URL fetcher that fetches nothing: a report must never reach the network."""
    raise ValueError(f"external resource refused: {url[:80]}")


def render(data: ReportData, options: RenderOptions) -> bytes:
    """Render the HTML committee report, then print it to PDF."""
    from reports.html import render_html

    weasyprint = _weasyprint()
    document = weasyprint.HTML(  # type: ignore[attr-defined]
        string=render_html(data, options), url_fetcher=_refuse_fetch
    )
    pdf: bytes = document.write_pdf()
    return pdf


RENDERER = Renderer(
    name="pdf",
    extensions=(".pdf",),
    description="Committee report as PDF (needs the 'pdf' extra: WeasyPrint)",
    render=render,
)
