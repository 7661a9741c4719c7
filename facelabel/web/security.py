"""Who may change things: on loopback anyone local; bound elsewhere, only a client that
showed the token once (kept in an HttpOnly cookie). Every form carries a CSRF token that
must equal the one in its cookie (double submit), so another site cannot post for you."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets

from starlette.requests import Request

TOKEN_COOKIE = "facelabel_token"
CSRF_COOKIE = "facelabel_csrf"
CSRF_FIELD = "csrf"
NEW_CSRF = "facelabel.new_csrf"  # the request scope's key for a token to set as the cookie


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    """The write token (None on loopback), the basic-auth credential (``user:password``, None
    when pages are open) and the checks made on every request."""

    def __init__(self, token: str | None, basic: str | None = None):
        self.token, self.basic = token, basic

    def let_in(self, request: Request) -> bool:
        """Whether the request may see pages: the basic-auth credential, when one is set."""
        if self.basic is None:
            return True
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            offered = base64.b64decode(encoded, validate=True) if scheme.lower() == "basic" else b""
        except (binascii.Error, ValueError):
            offered = b""
        return hmac.compare_digest(offered, self.basic.encode())

    def may_write(self, request: Request) -> bool:
        if self.token is None or self.basic is not None:  # loopback, or the visitor passed basic auth
            return True
        shown = request.cookies.get(TOKEN_COOKIE, "")
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            shown = header.removeprefix("Bearer ")
        return hmac.compare_digest(shown.encode(), self.token.encode())

    def token_matches(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode())


def csrf_token(request: Request) -> str:
    """The browser's CSRF token (a new one when it has none; the response sets the cookie)."""
    return request.cookies.get(CSRF_COOKIE) or request.scope.setdefault(NEW_CSRF, secrets.token_urlsafe(24))


def csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and submitted) and hmac.compare_digest(cookie.encode(), submitted.encode())
