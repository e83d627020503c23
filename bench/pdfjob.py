"""One PDF document measured in its own process (P9–P11): `python -m bench.pdfjob URL INSTANCE PATH TOKEN REPEATS`.

Fetches PATH through the real app (in-process client, bearer token) REPEATS times after a warm-up and,
for the same HTML, the pure WeasyPrint render (the raw lower bound: the HTML the view passed to
`qcflow.reports.pdf.render_pdf`, rendered again with the same stylesheet and URL fetcher). Prints
one JSON line: app and raw times (ms), pages, bytes, and the process's peak RSS (MiB).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time


def session_cookie(app, token: str) -> str:
    """A signed session cookie of a new server-side session of the token's user."""
    from datetime import timedelta

    from flask.sessions import SecureCookieSessionInterface

    from qcflow.auth import services
    from qcflow.core.time import now
    from qcflow.extensions import db

    with app.app_context():
        user, _touched = services.load_token(token, now=now())
        key = services.start_session(user, now=now(), absolute=timedelta(hours=12))
        db.session.commit()
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps({"_user_id": key, "_fresh": True})


def main(url: str, instance: str, path: str, token: str, repeats: int) -> None:
    os.environ["QCFLOW_INSTANCE_PATH"] = instance
    import weasyprint

    from qcflow import create_app
    from qcflow.reports import pdf

    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url})
    seen = []
    real = pdf.render_pdf

    def spy(html: str) -> bytes:
        seen.append(html)
        return real(html)

    pdf.render_pdf = spy
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    if not path.startswith("/api/"):
        # Tokens open the JSON API only: a page is fetched in a session of the token's user, as the
        # browser of someone logged in (password and second factor) would.
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], session_cookie(app, token))
        headers = {}
    app_ms, body = [], b""
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            print(json.dumps({"error": f"{path}: HTTP {response.status_code} {response.get_data(as_text=True)[:300]}"}))
            return
        body = response.get_data()
        if attempt:
            app_ms.append(elapsed)
    pdf.render_pdf = real
    raw_ms, pages = [], 0
    with app.test_request_context():
        for _ in range(repeats):
            started = time.perf_counter()
            document = weasyprint.HTML(string=seen[-1], base_url=app.static_folder + os.sep,
                                       url_fetcher=pdf.fetcher()).render(
                stylesheets=[weasyprint.CSS(string=pdf.BASE_CSS, url_fetcher=pdf.fetcher())])
            document.write_pdf()
            raw_ms.append((time.perf_counter() - started) * 1000)
            pages = len(document.pages)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"app_ms": app_ms, "raw_ms": raw_ms, "pages": pages, "bytes": len(body), "rss_mib": round(rss, 1),
                      "html_chars": len(seen[-1])}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
