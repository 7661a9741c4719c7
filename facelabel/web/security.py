"""Who may change things: on loopback anyone local; bound elsewhere, only a client that
showed the token once (kept in an HttpOnly cookie). Every form carries a CSRF token that
must equal the one in its cookie (double submit), so another site cannot post for you."""

from __future__ import annotations

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
    """The write token (None on loopback) and the checks made on every request."""

    def __init__(self, token: str | None):
        self.token = token

    def may_write(self, request: Request) -> bool:
        if self.token is None:
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
