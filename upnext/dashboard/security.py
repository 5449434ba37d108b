"""Who may look and who may act: HTTP Basic auth (compared in constant time) and a CSRF token
that needs no session store, so it works standalone and mounted inside a host app alike.

The token is a double-submit cookie signed with a secret: the cookie holds ``nonce.signature``;
an action must send the same value in the ``X-CSRF-Token`` header or a ``csrf_token`` form field,
and its signature must be ours. Another site can neither read the cookie nor mint a signed one.
The secret is random per process unless given (several processes behind one balancer share one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from upnext.dashboard.web import Request

CSRF_COOKIE = "upnext_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def parse_auth(text: str) -> tuple[str, str]:
    """``user:password`` -> (user, password); ValueError naming the setting otherwise."""
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth (or UPNEXT_DASHBOARD_AUTH) must be USER:PASSWORD, both non-empty")
    return user, password


class BasicAuth:
    def __init__(self, user: str, password: str):
        self.expected = f"{user}:{password}".encode()

    def allows(self, request: Request) -> bool:
        scheme, _, encoded = request.header("Authorization").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self.expected)


class Csrf:
    def __init__(self, secret: bytes | None = None):
        self.secret = secret or secrets.token_bytes(32)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.secret, nonce.encode(), hashlib.sha256).hexdigest()

    def token_for(self, request: Request) -> tuple[str, bool]:
        """The request's valid token, or a new one; and whether it is new (the cookie is then set)."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if self.valid(current):
            return current, False
        nonce = secrets.token_hex(16)
        return f"{nonce}.{self._sign(nonce)}", True

    def valid(self, token: str) -> bool:
        nonce, _, signature = token.partition(".")
        return bool(nonce) and hmac.compare_digest(signature.encode(), self._sign(nonce).encode())

    def allows(self, request: Request) -> bool:
        """The cookie and the header (or form field) agree and carry our signature."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.header(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode()) and self.valid(cookie)

    @staticmethod
    def cookie_header(token: str, path: str) -> tuple[str, str]:
        return "Set-Cookie", f"{CSRF_COOKIE}={token}; Path={path or '/'}; SameSite=Strict; HttpOnly"
