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
"""

from __future__ import annotations

from collections.abc import Sequence

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
