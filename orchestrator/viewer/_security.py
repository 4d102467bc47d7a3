"""ASGI middleware of the viewer: the token gate and the security headers.

Both are plain ASGI (not ``BaseHTTPMiddleware``) so that they never buffer the
Server-Sent-Events stream.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from urllib.parse import quote, unquote

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "ponder_view_token"
"""The cookie that carries the token after the page was opened with ``?token=``."""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""Content-Security-Policy of every response: no inline script, nothing from elsewhere.

This is a second line of defence; the page itself never parses trace data as HTML.
"""

_HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),  # the page URL may hold ?token=
    ("x-frame-options", "DENY"),
)

_UNAUTHORIZED_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>401 - Ponder viewer</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/css/viewer.css"></head>
<body><main class="notice"><h1>401: this viewer needs its token</h1>
<p>Open the address that <code>ponder view</code> printed (it ends in
<code>?token=...</code>), or send <code>Authorization: Bearer TOKEN</code>.</p>
</main></body></html>
"""


def _same(given: bytes, token: bytes) -> bool:
    return hmac.compare_digest(given, token)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class SecurityHeaders:
    """Adds :data:`CSP` and friends to every HTTP response.

    :param app: the wrapped application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TokenGate:
    """Lets a request through only when it carries the token.

    Accepted: ``Authorization: Bearer TOKEN``, ``?token=TOKEN`` (for the page and
    ``EventSource``, which cannot send headers) or the :data:`COOKIE` that a response
    to a ``?token=`` request sets, so that the page's own requests (its scripts,
    its API calls) need not repeat it. Anything else is answered 401: JSON under
    ``/api/``, a short HTML page elsewhere. Tokens are compared in constant time.

    :param app: the wrapped application.
    :param token: the token; must not be empty.
    :raises ValueError: for an empty token.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the viewer token must not be empty")
        self.app = app
        self._token = _utf8(token)

    def _candidates(self, scope: Scope) -> tuple[bytes | None, Iterable[bytes]]:
        """The token given in the query, and those given otherwise, as raw bytes."""
        headers = Headers(scope=scope)  # values decoded as latin-1: encode back to the bytes
        query = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("token")
        others: list[bytes] = []
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            others.append(value.strip().encode("latin-1"))
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        if cookie:
            others.append(_utf8(unquote(cookie)))
        return (_utf8(query) if query is not None else None), others

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query, others = self._candidates(scope)
        if query is not None and _same(query, self._token):
            await self.app(scope, receive, self._setting_cookie(send))
        elif any(_same(c, self._token) for c in others):
            await self.app(scope, receive, send)
        else:
            await self._refuse(scope, send)

    def _setting_cookie(self, send: Send) -> Send:
        cookie = (
            f"{COOKIE}={quote(self._token, safe='')}; "
            "Path=/; HttpOnly; SameSite=Strict"
        )

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        return send_with_cookie

    async def _refuse(self, scope: Scope, send: Send) -> None:
        path: str = scope.get("path", "")
        if path.startswith("/api/"):
            body = json.dumps({"detail": "missing or wrong token"}).encode()
            ctype = b"application/json"
        else:
            body = _UNAUTHORIZED_HTML.encode()
            ctype = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", ctype),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="ponder-view"'),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
