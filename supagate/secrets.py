"""The one redactor: every message, log line and exception that could carry a secret
passes through `redact` before anyone sees it.

A secret reaches text in more forms than the one it was given in: a URL's password
percent-encoded or decoded, a token with its trailing newline trimmed, escaped by JSON or
by repr() (httpx quotes an illegal header as bytes), so each form is replaced."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
URL_MASK = "<database url>"


_USERINFO_PASSWORD = re.compile(r"://[^:/@]*:([^@]*)@")


def password_of(url: str) -> str | None:
    """The URL's password, decoded; found by pattern when the URL is too malformed to parse
    (libpq then quotes it back in its error)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        match = _USERINFO_PASSWORD.search(url)
        password = match.group(1) if match else None
    return unquote(password) if password else None


def _raw_password(url: str) -> str | None:
    match = _USERINFO_PASSWORD.search(url)
    return match.group(1) if match else None


def url_without_password(url: str) -> str:
    """The URL for a command line: the password goes to the child's environment instead."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1@", url)


def _forms(secret: str) -> set[str]:
    forms = {secret, secret.strip(), quote(secret, safe=""), json.dumps(secret)[1:-1], repr(secret)[1:-1],
             repr(secret.encode())[2:-1]}
    return {f for f in forms if f}


def redact(text: str, *secrets: str | None) -> str:
    """`text` with each secret replaced in every form it may take. A secret that is a
    connection URL is replaced whole, and its password wherever else it appears."""
    values: set[str] = set()
    urls: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        if "://" in secret:
            urls.update(_forms(secret))
            password = password_of(secret)
            if password:
                values.update(_forms(password))
                values.update(_forms(_raw_password(secret) or ""))
        else:
            values.update(_forms(secret))
    for url in sorted(urls, key=len, reverse=True):
        text = text.replace(url, URL_MASK)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
