"""Where the organisation-wide access token may be sent.

`supabaseAccessToken` can change every project of its organisation, so the Management API
URL (`managementApiUrl`) is Supabase's own over https unless the stack says, by name, that
the token may go elsewhere: `allowUnlistedManagementApi: true`, for a mock or a proxy the
team runs. Even then it never crosses a network in clear text: http is for loopback only.

Only api.supabase.com is listed: it is the one public endpoint Supabase's API docs name
(the vendored OpenAPI spec is served from it). The Supabase CLI's other built-in profiles (api.supabase.green, its
operators' staging; localhost:8080, a local platform) take tokens issued there, not a
customer's, so they go through the flag like any other host."""

from __future__ import annotations

import ipaddress
import re

DEFAULT_URL = "https://api.supabase.com"
LISTED_HOSTS = ("api.supabase.com",)
UNLISTED_FLAG = "allowUnlistedManagementApi"


def _loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost` (not *.localhost, which a resolver may send anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Scheme, host (a name or a bracketed IPv6 address) and port, nothing else: no user part,
# path, query, whitespace or escape, on which URL parsers disagree about the host.
_BARE_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?/?\Z")


def refusal(url: str, allow_unlisted: bool) -> str | None:
    """Why the access token must not be sent to `url` (None when it may), naming the fix."""
    risk = ("the organisation-wide access token (supabaseAccessToken), which can change every project of the "
            "organisation, is sent to it")
    bare = _BARE_URL.match(url)
    if not bare:
        return f"{url!r} is not a bare https://host URL (no user, path, query or spaces); use {DEFAULT_URL}"
    scheme, host, port = bare.group(1).lower(), bare.group(2).lower().strip("[]"), bare.group(3)
    if scheme != "https" and not (scheme == "http" and allow_unlisted and _loopback(host)):
        return (f"{url!r} is not https: {risk} in clear text; use {DEFAULT_URL}"
                + (f" (http only to a loopback mock, with {UNLISTED_FLAG}: true)" if scheme == "http" else ""))
    if (host not in LISTED_HOSTS or port not in (None, "443")) and not allow_unlisted:
        return (f"{url!r} is not the Supabase Management API ({', '.join(LISTED_HOSTS)}): {risk}. Use "
                f"{DEFAULT_URL}, or, for a mock or proxy you control, set {UNLISTED_FLAG}: true, knowing the token "
                "then goes to that host")
    return None
