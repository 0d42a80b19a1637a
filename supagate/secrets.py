"""The one redactor: every message, log line and exception that could carry a secret
passes through `redact` before anyone sees it.

A secret reaches text in more forms than the one it was given in: a URL's password
percent-encoded or decoded, a token with its trailing newline trimmed, escaped by JSON or
by repr() (httpx quotes an illegal header as bytes), so each form is replaced.

A password holding an unencoded `@ / : ? #` makes the URL ambiguous: libpq ends the
password at the first `@` (and finds none past a `/`), Python's urlsplit ends the host part
at the first `/ ? #` and the password at the last `@`, and each then echoes what it took for
the host, the port or the query (`could not translate host name "RET@127.0.0.1"`, `invalid
integer value "RET" for connection option "port"`). So for such a URL every reading of the
password is masked, and each piece of it between those characters too."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
URL_MASK = "<database url>"
URL_DELIMITERS = "@/:?#"

_USERINFO_PASSWORD = re.compile(r"://[^:/@]*:([^@]*)@")
_AFTER_USER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*:")  # scheme://user:
_SHORT = 4  # a shorter piece is masked only where it stands alone, not inside every word


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


def _libpq_password(url: str) -> str | None:
    """The password as libpq reads a URI: the user part ends at the first `@`, and there is
    none when a `/` comes first."""
    match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url)
    rest = url[match.end():] if match else ""
    stop = re.search(r"[@/]", rest)
    if not stop or stop.group() != "@":
        return None
    _user, colon, password = rest[:stop.start()].partition(":")
    return password if colon else None


def _intended_password(url: str) -> str | None:
    """What the URL's author most likely meant: everything from `user:` to the last `@`."""
    match = _AFTER_USER.match(url)
    if not match:
        return None
    rest = url[match.end():]
    return rest[:rest.rfind("@")] if "@" in rest else None


def _password_readings(url: str) -> set[str]:
    """The URL's password as each parser reads it; when they disagree, or it holds one of
    `@ / : ? #`, every reading and each piece of it between those characters."""
    try:
        split = urlsplit(url).password
    except ValueError:
        split = None
    readings = {p for p in (split, _raw_password(url), _libpq_password(url), _intended_password(url)) if p}
    if len(readings) <= 1 and not any(ch in p for p in readings for ch in URL_DELIMITERS):
        return readings
    pieces = {piece for p in readings for piece in re.split(f"[{re.escape(URL_DELIMITERS)}]", p) if piece}
    return readings | pieces


def password_is_ambiguous(url: str) -> bool:
    """Whether the URL's password holds an unencoded `@ / : ? #` (parsers disagree on it)."""
    readings = _password_readings(url)
    return len(readings) > 1 or any(ch in p for p in readings for ch in URL_DELIMITERS)


def url_without_password(url: str) -> str:
    """The URL for a command line: the password goes to the child's environment instead."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1@", url)


def _forms(secret: str) -> set[str]:
    forms = {secret, secret.strip(), quote(secret, safe=""), json.dumps(secret)[1:-1], repr(secret)[1:-1],
             repr(secret.encode())[2:-1]}
    return {f for f in forms if f}


# A key=value connection string's password runs to the next `key=`: libpq stops at a space
# and echoes the rest (`missing "=" after "Zebra99XY"`), so each piece of it is a secret too.
_CONNINFO_PASSWORD = re.compile(r"\bpassword\s*=\s*(.*?)(?=\s+\w+\s*=|\Z)", re.S)


def _conninfo_pieces(conninfo: str) -> set[str]:
    pieces: set[str] = set()
    for match in _CONNINFO_PASSWORD.finditer(conninfo):
        pieces.add(match.group(1).strip())
        pieces.update(p for p in re.split(r"[\s'\"=\\]+", match.group(1)) if p)
    return pieces


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
            for password in _password_readings(secret):
                values.update(_forms(password) | _forms(unquote(password)))
        elif _CONNINFO_PASSWORD.search(secret):
            urls.update(_forms(secret))
            for piece in _conninfo_pieces(secret):
                values.update(_forms(piece))
        else:
            values.update(_forms(secret))
    for url in sorted(urls, key=len, reverse=True):
        text = text.replace(url, URL_MASK)
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= _SHORT:
            text = text.replace(value, MASK)
        else:  # "a" of "a@b" must not turn every "a" of the message into ***
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", MASK, text)
    return text
