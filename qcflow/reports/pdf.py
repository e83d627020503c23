"""PDF rendering: the only module that imports WeasyPrint, at the first document (P12: a worker starts
without it; pages that offer a PDF import this module at their top).

Documents are rendered from our own templates and never fetch anything from the network: the
URL fetcher serves `data:` URLs and files under the app's static folder, and refuses the rest.
Chinese text needs a CJK font installed on the machine (fonts-noto-cjk or fonts-wqy-zenhei).
"""
from __future__ import annotations

import functools
import os
from urllib.parse import unquote, urlsplit

from flask import Response, current_app, render_template

#: Applied to every document: A4, page numbers, and fonts that have Chinese glyphs.
BASE_CSS = """
@page { size: A4; margin: 18mm 16mm 20mm;
        @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #555; } }
html { font-family: "Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif; font-size: 10.5pt; line-height: 1.5; }
"""


class RefusedURL(ValueError):
    """A document asked for a resource outside the allowed local folders."""


def is_local(url: str, roots: list[str]) -> bool:
    """Whether `url` is a `data:` URL or a file under one of `roots` (real paths)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "data":
        return True
    parts = urlsplit(url)
    if scheme != "file" or parts.netloc not in ("", "localhost"):
        return False
    path = os.path.realpath(unquote(parts.path))
    return any(path == root or path.startswith(root + os.sep) for root in roots)


@functools.cache
def _fetcher_class():
    from weasyprint.urls import URLFetcher

    class LocalOnlyFetcher(URLFetcher):
        """Serve `data:` URLs and files under `roots`; refuse every other URL before any connection."""

        def __init__(self, roots):
            super().__init__(allowed_protocols=("data", "file"), allow_redirects=False)
            self.roots = [os.path.realpath(root) for root in roots]

        def fetch(self, url, headers=None):
            if not is_local(url, self.roots):
                raise RefusedURL(f"not a local resource: {url[:200]}")
            return super().fetch(url, headers)

    return LocalOnlyFetcher


def fetcher():
    """A fetcher of the static folder's files and `data:` URLs only."""
    return _fetcher_class()([current_app.static_folder])


def render_pdf(html: str) -> bytes:
    """Render an HTML document to PDF bytes (relative URLs resolve under the static folder)."""
    import weasyprint

    document = weasyprint.HTML(string=html, base_url=current_app.static_folder + os.sep, url_fetcher=fetcher())
    return document.write_pdf(stylesheets=[weasyprint.CSS(string=BASE_CSS, url_fetcher=fetcher())])


def render_template_pdf(template: str, **context) -> bytes:
    """Render a print template (templates/reports/) to PDF bytes."""
    return render_pdf(render_template(template, **context))


def pdf_response(data: bytes, filename: str) -> Response:
    """Send a PDF to be shown in the browser (and saved under `filename`)."""
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})
