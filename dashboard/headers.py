"""Response headers: the Content-Security-Policy the app runs under, and the rest.

Scripts: only from this server (`'self'`: the Dash renderer and component bundles are
served locally) and the inline scripts Dash itself writes into the page, allowed by their
SHA-256 (`Dash.csp_hashes()`: the renderer's start-up line). No `'unsafe-inline'` and no
`'unsafe-eval'` for scripts: a string that slipped into the page as HTML could not run.

Styles need `'unsafe-inline'`: Dash's components insert `<style>` elements whose text
changes at run time (so no fixed hash fits; their bundles offer no nonce hook) and Plotly
sets `style` attributes on the SVG it draws. Inline style cannot run code; the page's text
is React-escaped and nothing lets a user choose CSS.

Images may also be `data:` URLs: Plotly draws a heatmap as a PNG it encodes itself (an
image runs no code). Everything else is closed: no plugins, frames, other sites' images,
fonts or connections, no `<base>`, forms only to this server, and no framing of the
dashboard by anyone.

Weight: responses are compressed (Brotli or gzip, flask-compress), except the sign-in
pages (password, code, the provider's return): a form's secret token sits there next to
the `next` path a link can choose (compressing a secret together with attacker-chosen
text leaks the secret through the length: BREACH). The rest may be compressed: pages and
layouts hold no secret (tenant data comes through callbacks), and another site cannot
make a browser send a callback (it needs the session's CSRF header), so it cannot probe
their lengths either.

What carries a version in its URL — Dash's fingerprinted component bundles, our assets
with `?m=<mtime>` — may be kept by the browser for a year (`immutable`); pages, layouts
and callbacks hold tenant data and are `no-store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flask
from dash.fingerprint import check_fingerprint
from flask_compress import Compress

BUNDLES = "/_dash-component-suites/"
ASSETS = "/assets/"
ONE_YEAR = 365 * 24 * 3600
COMPRESSED_TYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "application/javascript",
    "application/json",
    "image/svg+xml",
]

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


def content_security_policy(script_hashes: Sequence[str]) -> str:
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],  # Plotly draws heatmaps as data: PNG images
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(csp: str, *, https: bool) -> dict[str, str]:
    """The headers every response carries (HSTS only when served over HTTPS)."""
    headers = {
        "Content-Security-Policy": csp,
        "Permissions-Policy": PERMISSIONS_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def versioned(path: str, query: Any) -> bool:
    """A URL whose bytes never change: a fingerprinted bundle (`….v4_4_1m1764…js`) or an
    asset with its modification time (`?m=…`), as Dash writes them into the page."""
    if path.startswith(BUNDLES):
        fingerprinted: bool = check_fingerprint(path)[1]  # type: ignore[no-untyped-call]
        return fingerprinted
    return path.startswith(ASSETS) and "m" in query


def cache_control(path: str, query: Any, *, status: int, signed_in: bool) -> str | None:
    """The `Cache-Control` a response gets (None: leave what Flask or Dash set).
    Bundles are served only to signed-in browsers, so they stay `private`; our assets are
    public (the sign-in page uses them). The bundles Dash's scripts load on demand
    (Plotly, the table) have no version in their URL: the browser keeps them but asks
    each time (`no-cache`), and their ETag answers `304 Not Modified`. Refusals and errors
    are never kept."""
    if status == 200 and versioned(path, query):
        scope = "private" if path.startswith(BUNDLES) else "public"
        return f"{scope}, max-age={ONE_YEAR}, immutable"
    if status == 200 and path.startswith(BUNDLES):
        return "private, no-cache"
    return "no-store" if signed_in else None


class _BundleCache:
    """Compressed bodies of the component bundles, per app, so each is compressed once
    per encoding rather than on every first visit. A bundle's bytes change only with its
    package, which takes a restart (a new app) to load."""

    def __init__(self) -> None:
        self._bodies: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._bodies.get(key)

    def set(self, key: str, value: bytes) -> None:
        if key.partition(";")[2].startswith(BUNDLES):  # flask-compress: "<encoding>;<path>"
            self._bodies[key] = value


def compressor(server: flask.Flask) -> Compress:
    """flask-compress for `server`, not registered: the guard's `after_request` calls
    `.after_request(response)` itself, last, for the responses it may compress."""
    server.config.update(
        COMPRESS_REGISTER=False,
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_ALGORITHM_STREAMING=["br"],
        COMPRESS_BR_LEVEL=5,
        COMPRESS_MIMETYPES=COMPRESSED_TYPES,
        COMPRESS_CACHE_BACKEND=_BundleCache,
        COMPRESS_CACHE_KEY=lambda request: request.path,
    )
    return Compress(server)
