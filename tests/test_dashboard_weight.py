"""What a page load weighs: responses compressed, versioned bundles kept by the browser,
and everything that holds an organisation's data never stored anywhere.

Byte counts per page load, before and after, are in docs/benchmarks.md
(`benchmarks/bench_dashboard_weight.py`)."""

from __future__ import annotations

import brotli
import pytest

from dashboard import ids
from tests import test_dashboard_access as access
from tests.test_dashboard_access import call, sign_in

# The two municipalities of the access tests (conftest's `make_estate`).
estate = access.estate

BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
YEAR = "max-age=31536000"


def bundle_urls(page: str) -> list[str]:
    return [
        part.split('"', 1)[0]
        for part in page.split('src="')[1:]
        if part.startswith("/_dash-component-suites/")
    ]


def test_bundles_come_compressed_and_are_kept_for_a_year(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    page = client.get("/", headers=BROWSER)
    assert page.headers["Content-Encoding"] == "br"
    html = brotli.decompress(page.data).decode()
    bundles = bundle_urls(html)
    assert any("dash_renderer" in url for url in bundles), html[:2000]
    for url in bundles:
        response = client.get(url, headers=BROWSER)
        assert response.status_code == 200, url
        # Fingerprinted (`.v4_4_1m…`): the URL changes with the bytes.
        assert response.headers["Cache-Control"] == f"private, {YEAR}, immutable", url
        if len(brotli.decompress(response.data)) >= 500:
            assert response.headers["Content-Encoding"] == "br", url
        assert "Accept-Encoding" in response.headers["Vary"]
    gzip_only = client.get(bundles[0], headers={"Accept-Encoding": "gzip"})
    assert gzip_only.headers["Content-Encoding"] == "gzip"
    # Plotly, loaded on demand, has no version in its URL: kept, asked again, 304.
    plotly = "/_dash-component-suites/plotly/package_data/plotly.min.js"
    first = client.get(plotly, headers=BROWSER)
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert first.headers["Content-Encoding"] == "br" and len(first.data) < 2_000_000
    again = client.get(plotly, headers={**BROWSER, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    # Our stylesheet as Dash links it (`?m=` its modification time), and without.
    assert (
        "immutable"
        in client.get("/assets/riskiturva.css?m=1", headers=BROWSER).headers["Cache-Control"]
    )
    assert "immutable" not in client.get("/assets/riskiturva.css").headers.get("Cache-Control", "")


def test_what_holds_tenant_data_is_never_stored(estate):
    app, _, _ = estate
    client, _ = sign_in(app, "hyvala-staff")
    route = call(
        app,
        client,
        f"{ids.PAGE}.children",
        {(ids.URL, "pathname"): "/org/hyvala/findings", (ids.URL, "search"): ""},
        headers=BROWSER,
    )
    assert route.status_code == 200 and route.headers["Content-Encoding"] == "br"
    assert "127.60.1.10" in brotli.decompress(route.data).decode()
    responses = {
        "callback": route,
        "page": client.get("/org/hyvala", headers=BROWSER),
        "layout": client.get("/_dash-layout", headers=BROWSER),
        "dependencies": client.get("/_dash-dependencies", headers=BROWSER),
        "not found": client.get("/nowhere", headers=BROWSER),
    }
    for name, response in responses.items():
        assert response.headers["Cache-Control"] == "no-store", name
    # Signed out: a bundle is refused, and the refusal is not kept.
    anonymous = app.server.test_client()
    refused = anonymous.get(bundle_urls(brotli.decompress(responses["page"].data).decode())[0])
    assert refused.status_code == 401 and "immutable" not in refused.headers.get(
        "Cache-Control", ""
    )


@pytest.mark.parametrize("path", ["/login", "/login?next=/org/hyvala"])
def test_the_sign_in_page_is_never_compressed(estate, path):
    """Its secret form token sits next to the `next` path a link chooses (BREACH)."""
    app, _, _ = estate
    response = app.server.test_client().get(path, headers=BROWSER)
    assert "Content-Encoding" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert 'name="csrf"' in response.get_data(as_text=True)
