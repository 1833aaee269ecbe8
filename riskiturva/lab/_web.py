"""nginx configuration for the lab's HTTPS hosts: one server block per address.

Each host listens on its own loopback address, so every block is the default server of its
socket and its `ssl_protocols` and `ssl_ciphers` really apply (no SNI sharing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from riskiturva.lab._pki import IssuedCert
from riskiturva.lab.manifest import Host

# Mozilla's "intermediate" TLS 1.2 suites with ECDHE (no DH parameters are configured).
MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
MOZILLA_CURVES = "X25519:prime256v1:secp384r1"


@dataclass(frozen=True)
class TlsProfile:
    protocols: str
    ciphers: str
    curves: str = MOZILLA_CURVES
    weak_dh: bool = False
    staple_ocsp: bool = False  # when the certificate has an OCSP response to staple


TLS_PROFILES: dict[str, TlsProfile] = {
    "modern": TlsProfile("TLSv1.2 TLSv1.3", MOZILLA_INTERMEDIATE_CIPHERS, staple_ocsp=True),
    "tls12": TlsProfile("TLSv1.2", MOZILLA_INTERMEDIATE_CIPHERS),
    # Everything OpenSSL 3 still has, down to NULL and anonymous suites and 1024-bit DH.
    "legacy": TlsProfile(
        "TLSv1 TLSv1.1 TLSv1.2", "ALL:COMPLEMENTOFALL:@SECLEVEL=0", "auto", weak_dh=True
    ),
    # Modern protocols and suites, but security level 0 so a 1024-bit SHA-1 leaf loads.
    "weak_cert": TlsProfile("TLSv1.2 TLSv1.3", f"{MOZILLA_INTERMEDIATE_CIPHERS}:@SECLEVEL=0"),
}

_HARDENED_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@dataclass(frozen=True)
class WebProfile:
    """How a host answers over HTTP(S)."""

    headers: dict[str, str]
    http: str  # "redirect", "content" or "closed" (nothing on port 80)
    security_txt: str | None  # "valid", "expired" or None
    server_tokens: bool = False
    insecure_cookie: bool = False
    site: str | None = None  # a CMS site in SITES: its front page and files


WEB_PROFILES: dict[str, WebProfile] = {
    "hardened": WebProfile(_HARDENED_HEADERS, "redirect", "valid"),
    "https_only": WebProfile(_HARDENED_HEADERS, "closed", "valid"),
    "partial": WebProfile(
        {
            "Strict-Transport-Security": "max-age=86400",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "SAMEORIGIN",
            "Referrer-Policy": "no-referrer",
        },
        "redirect",
        "expired",
    ),
    "bare": WebProfile({}, "content", None, server_tokens=True, insecure_cookie=True),
    # A Drupal 7.57 site on PHP 7.4.33 that says so in its headers.
    "drupal7": WebProfile(
        {
            **_HARDENED_HEADERS,
            "X-Powered-By": "PHP/7.4.33",
            "X-Generator": "Drupal 7 (http://drupal.org)",
        },
        "redirect",
        "valid",
        site="drupal7",
    ),
    # WordPress on the current release (its generator tag and feed name it).
    "wordpress": WebProfile(_HARDENED_HEADERS, "redirect", "valid", site="wordpress"),
}

# Files of the CMS sites, relative to the document root ({host} is the host name).
SITES: dict[str, dict[str, str]] = {
    "drupal7": {
        "index.html": (
            '<!DOCTYPE html>\n<html lang="fi"><head>\n'
            '<meta name="Generator" content="Drupal 7 (http://drupal.org)" />\n'
            '<link rel="stylesheet" href="https://{host}/sites/default/files/css/css_lab.css" />\n'
            "<title>Uutiset | Rapalan kunta</title></head>\n"
            "<body><h1>Uutiset</h1></body></html>\n"
        ),
        "CHANGELOG.txt": (
            "\nDrupal 7.57, 2018-02-21\n-----------------------\n"
            "- Fixed security issues (multiple vulnerabilities). See SA-CORE-2018-001.\n\n"
            "Drupal 7.56, 2017-06-21\n-----------------------\n"
            "- Fixed security issues (access bypass). See SA-CORE-2017-003.\n"
        ),
    },
    "wordpress": {
        "index.html": (
            '<!DOCTYPE html>\n<html lang="sv"><head>\n'
            '<meta name="generator" content="WordPress 7.1" />\n'
            '<link rel="https://api.w.org/" href="https://{host}/wp-json/" />\n'
            "<title>Blogi | Sekala</title></head>\n<body><h1>Blogi</h1></body></html>\n"
        ),
        "feed/index.html": (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            "<title>Blogi</title><generator>https://wordpress.org/?v=7.1.0</generator>"
            "</channel></rss>\n"
        ),
    },
}


def _security_txt(host: Host, kind: str, now: dt.datetime) -> str:
    expires = now + (dt.timedelta(days=180) if kind == "valid" else -dt.timedelta(days=60))
    domain = host.fqdn.split(".", 1)[1]
    return (
        f"Contact: mailto:tietoturva@{domain}\n"
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        "Preferred-Languages: fi, sv, en\n"
        f"Canonical: https://{host.fqdn}/.well-known/security.txt\n"
    )


def _mta_sts_policy(host: Host) -> str:
    assert host.mta_sts
    mx_lines = "".join(f"mx: {mx}\r\n" for mx in host.mta_sts.mx)
    return f"version: STSv1\r\nmode: {host.mta_sts.mode}\r\n{mx_lines}max_age: 604800\r\n"


def _server_block(
    host: Host, bind_ip: str, cert: IssuedCert, docroot: Path, dh_params: Path, now: dt.datetime
) -> str:
    assert host.tls and host.web
    tls, web = TLS_PROFILES[host.tls], WEB_PROFILES[host.web]
    root = docroot / host.fqdn
    (root / ".well-known").mkdir(parents=True, exist_ok=True)
    links = "".join(f'<p><a href="{url}">{url}</a></p>' for url in host.links)
    (root / "index.html").write_text(
        f"<!doctype html><title>{host.fqdn}</title><h1>{host.fqdn}</h1>{links}\n",
        encoding="utf-8",
    )
    for relative, content in SITES.get(web.site or "", {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content.replace("{host}", host.fqdn), encoding="utf-8")
    if web.security_txt:
        (root / ".well-known" / "security.txt").write_text(
            _security_txt(host, web.security_txt, now), encoding="utf-8"
        )
    if host.mta_sts:
        (root / ".well-known" / "mta-sts.txt").write_text(_mta_sts_policy(host), encoding="utf-8")

    headers = [f'    add_header {k} "{v}" always;' for k, v in web.headers.items()]
    if web.insecure_cookie:
        headers.append('    add_header Set-Cookie "PHPSESSID=lab0session; path=/" always;')
    tls_lines = [
        f"    ssl_certificate {cert.chain};",
        f"    ssl_certificate_key {cert.key};",
        f"    ssl_protocols {tls.protocols};",
        f"    ssl_ciphers '{tls.ciphers}';",
        f"    ssl_ecdh_curve {tls.curves};",
        "    ssl_prefer_server_ciphers off;",
        "    ssl_session_tickets off;",
    ]
    if tls.weak_dh:
        tls_lines.append(f"    ssl_dhparam {dh_params};")
    if tls.staple_ocsp and cert.ocsp:
        tls_lines += ["    ssl_stapling on;", f"    ssl_stapling_file {cert.ocsp};"]
    body = [
        f"    server_name {host.fqdn};",
        f"    root {root};",
        f"    server_tokens {'on' if web.server_tokens else 'off'};",
        *headers,
        "    location / { try_files $uri $uri/index.html =404; }",
        "    location /.well-known/ { default_type text/plain; }",
    ]
    blocks = ["server {", f"    listen {bind_ip}:443 ssl;", *tls_lines, *body, "}"]
    if web.http == "redirect":
        blocks += [
            "server {",
            f"    listen {bind_ip}:80;",
            f"    server_name {host.fqdn};",
            "    server_tokens off;",
            f"    return 301 https://{host.fqdn}$request_uri;",
            "}",
        ]
    elif web.http == "content":
        blocks += ["server {", f"    listen {bind_ip}:80;", *body, "}"]
    return "\n".join(blocks)


def web_ports(host: Host) -> list[int]:
    """The TCP ports nginx opens for `host`."""
    assert host.web
    return [443] if WEB_PROFILES[host.web].http == "closed" else [80, 443]


def feeds_block(address: str, root: Path) -> str:
    """The lab's vulnerability feeds as static files over plain HTTP (port 80)."""
    return "\n".join(
        [
            "server {",
            f"    listen {address}:80;",
            "    server_tokens off;",
            f"    root {root};",
            "    location / { default_type application/octet-stream; }",
            "    location ~ \\.json$ { default_type application/json; }",
            "}",
        ]
    )


# Connections a lab server must take at once beyond its listening sockets: a scanner's
# concurrency (100 TLS handshakes, a few hundred web fetches) with room to spare.
CLIENT_CONNECTIONS = 1024


def nginx_limits(listening: int) -> tuple[int, int]:
    """(worker_connections, worker_rlimit_nofile) for one worker with `listening` sockets.

    Every listening socket takes one of the worker's connections (nginx refuses to start a
    worker with fewer connections than sockets), each client connection one more, and each
    connection a file descriptor; the descriptor limit leaves the same again for files.
    """
    connections = listening + CLIENT_CONNECTIONS
    return connections, 2 * connections


def nginx_config(
    servers: list[tuple[Host, str, IssuedCert]],
    workdir: Path,
    dh_params: Path,
    now: dt.datetime,
    extra_blocks: tuple[str, ...] = (),
) -> str:
    """A complete nginx.conf for `servers`, a list of (host, address to bind, certificate)."""
    docroot = workdir / "html"
    blocks = [_server_block(h, ip, c, docroot, dh_params, now) for h, ip, c in servers]
    blocks += extra_blocks
    connections, files = nginx_limits(sum(b.count("    listen ") for b in blocks))
    return "\n".join(
        [
            "worker_processes 1;",
            f"worker_rlimit_nofile {files};",
            f"pid {workdir / 'nginx.pid'};",
            f"error_log {workdir / 'error.log'} warn;",
            f"events {{ worker_connections {connections}; }}",
            "http {",
            "    default_type text/html;",
            "    types { text/html html; text/plain txt; }",
            f"    access_log {workdir / 'access.log'};",
            f"    client_body_temp_path {workdir / 'tmp'};",
            f"    proxy_temp_path {workdir / 'tmp'};",
            f"    fastcgi_temp_path {workdir / 'tmp'};",
            f"    uwsgi_temp_path {workdir / 'tmp'};",
            f"    scgi_temp_path {workdir / 'tmp'};",
            *blocks,
            "}",
            "",
        ]
    )
