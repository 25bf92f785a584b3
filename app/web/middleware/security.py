"""Browser-facing protections, as ASGI middleware: an Origin check and CSRF tokens on unsafe requests, the Secure
flag on cookies sent over https, the security headers of every response, and private caching for a dashboard
only its users may read.

The CSRF tokens are a synchroniser token bound to the session (app.auth.csrf). No library fitted: asgi-csrf, the
one that reads form fields, breaks on multipart bodies with python-multipart >= 0.0.26 (simonw/asgi-csrf#38, the
release that fixes CVE-2026-40347), and starlette-csrf checks a header only, which a plain HTML form cannot send.
So this module reads the token itself: from the `X-CSRFToken` header, else from the body of a form, using
python-multipart's parser (Starlette's). A multipart body is read only up to its first part, which must be the
token (the upload form sends it first, before the file); the rest streams on to the route untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.csrf import matches_session, session_csrf_token
from app.web.errors import wants_json

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_FIELD = "csrftoken"
CSRF_HEADER = "x-csrftoken"
#: Checked even without a session cookie: another site must not log a browser in (or out).
ALWAYS_PROTECTED = frozenset({"/login", "/logout"})
#: The most of a url-encoded form read to find its token; the forms of this app are far smaller.
MAX_FORM_BYTES = 1 << 20
#: The most read of a multipart body's first part (the token) before giving up.
MAX_FIRST_PART_BYTES = 64 << 10
# No inline script anywhere (static/app.js holds it all); inline style attributes draw bars and boxes.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
_PAGE_TOKEN_HELP = (
    "The form's security token is missing or out of date, so it was not accepted (the token stops other sites "
    "from submitting forms in your name). Reload the page and submit it again."
)
_API_TOKEN_HELP = (
    "This request carries the session cookie but no valid CSRF token. Scripts should send `Authorization: "
    "Bearer TOKEN` (from `neuron-atlas tokens create NAME`) and no cookies; a page's own script must send the "
    "token of the page's forms in the X-CSRFToken header."
)


def csrf_field(request: Request) -> Markup:
    """Return the hidden form field carrying the session's CSRF token (first in a multipart form)."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(session_csrf_token(request.session))}">')


def has_bearer_token(headers: Headers) -> bool:
    """Return whether the request authenticates with `Authorization: Bearer …` (no ambient credentials)."""
    return headers.get("authorization", "").lower().startswith("bearer ")


def cross_site_source(headers: Headers) -> str | None:
    """Return the Origin (else Referer) of a request when it names another host than the request's; else None.

    Browsers send Origin with every cross-site POST; a request with neither header still needs its token.
    """
    host = headers.get("host", "").lower()
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value is None:
            continue
        if value == "null" or urlsplit(value).netloc.lower() != host:
            return value
        return None
    return None


class FormProblem(Exception):
    """The body could not be searched for its CSRF token; `status` and the message say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def form_token(headers: Headers, receive: Receive) -> tuple[str | None, Receive]:
    """Return the `csrftoken` field of a form body (None if absent) and a receive that replays what was read."""
    content_type, options = parse_options_header(headers.get("content-type"))
    if content_type == b"application/x-www-form-urlencoded":
        messages, body = await _read_body(receive, MAX_FORM_BYTES)
        if body is None:
            raise FormProblem(413, f"The form is larger than {MAX_FORM_BYTES >> 20} MB; send less.")
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return next((value for name, value in fields if name == CSRF_FIELD), None), _replaying(messages, receive)
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise FormProblem(
                400, "The multipart body names no boundary; send Content-Type: multipart/form-data; boundary=…"
            )
        first = _FirstPart(boundary)
        messages = await first.read(receive)
        return first.token(), _replaying(messages, receive)
    return None, receive


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """Return the body's messages and bytes (None when it passes `limit`)."""
    messages: list[Message] = []
    body = bytearray()
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, bytes(body)


class _FirstPart:
    """The first part of a multipart body, parsed by python-multipart as the body arrives."""

    def __init__(self, boundary: bytes) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.data = bytearray()
        self.ended = False
        self._field = b""
        self._value = b""
        self.parser = MultipartParser(
            boundary,
            {
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    async def read(self, receive: Receive) -> list[Message]:
        """Feed the body to the parser until the first part ends, it grows too big, or the body ends."""
        messages: list[Message] = []
        read = 0
        while not self.ended:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            read += len(chunk)
            try:
                self.parser.write(chunk)
            except MultipartParseError as error:
                raise FormProblem(400, f"The multipart body is malformed ({error}); send a well-formed form.") from None
            if read > MAX_FIRST_PART_BYTES or not message.get("more_body", False):
                break
        return messages

    def token(self) -> str | None:
        """Return the first part's value if it is the csrftoken field; raise FormProblem if a file comes first."""
        if not self.ended:
            return None
        _disposition, options = parse_options_header(self.headers.get(b"content-disposition"))
        if b"filename" in options:
            raise FormProblem(403, "The csrftoken field must come before the file in a multipart form; send it first.")
        return self.data.decode("utf-8", "replace") if options.get(b"name") == CSRF_FIELD.encode() else None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        if not self.ended:
            self.headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.ended and len(self.data) <= MAX_FIRST_PART_BYTES:
            self.data += data[start:end]

    def _on_part_end(self) -> None:
        self.ended = True


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


class CsrfProtection:
    """Refuse unsafe requests from another site (403), and a session's requests without its CSRF token (403).

    Requests with `Authorization: Bearer` pass (a browser adds that header to no cross-site request), and so do
    requests without a session cookie outside ALWAYS_PROTECTED: they are anonymous, which the login check answers.
    """

    def __init__(self, app: ASGIApp, *, templates: Jinja2Templates, session_cookie: str) -> None:
        self.app = app
        self.templates = templates
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check where an unsafe request comes from and its token, then pass it on (its body replayed)."""
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        headers = connection.headers
        if has_bearer_token(headers):
            await self.app(scope, receive, send)
            return
        source = cross_site_source(headers)
        if source is not None:
            message = (
                f"Refused a cross-site request: it came from {source}, not from this dashboard "
                f"({headers.get('host')}). Submit forms from the dashboard's own pages."
            )
            await self._refusal(scope, 403, "Cross-site request refused", message)(scope, receive, send)
            return
        if self.session_cookie not in connection.cookies and scope["path"] not in ALWAYS_PROTECTED:
            await self.app(scope, receive, send)
            return
        session = scope.get("session", {})
        if not matches_session(session, headers.get(CSRF_HEADER)):
            try:
                candidate, receive = await form_token(headers, receive)
            except FormProblem as problem:
                await self._refusal(scope, problem.status, "Form refused", str(problem))(scope, receive, send)
                return
            if not matches_session(session, candidate):
                help_text = _API_TOKEN_HELP if wants_json(Request(scope)) else _PAGE_TOKEN_HELP
                await self._refusal(scope, 403, "Form expired", help_text)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, status: int, title: str, message: str) -> Response:
        request = Request(scope)
        if wants_json(request):
            return JSONResponse({"detail": message}, status_code=status)
        return self.templates.TemplateResponse(
            request, "error.html", {"title": title, "message": message}, status_code=status
        )


class SecureCookiesOnHttps:
    """Add the Secure flag to every cookie set in answer to an https request (session and CSRF cookies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; mark the answer's cookies Secure when the request came over https."""
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _rewriting_start(send, _secure_cookies))


class SecurityHeaders:
    """Add the Content-Security-Policy, nosniff, referrer and framing headers to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add whichever security headers the answer lacks."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _rewriting_start(send, _add_security_headers))


class PrivateCaching:
    """Mark every answer `Cache-Control: private` (a `public` directive becomes `private`, max-age and immutable
    stay for the browser's own cache), for a dashboard only logged-in users may read (READ_ACCESS=users)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; make its answer's caching private."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _rewriting_start(send, _private_caching))


RawHeaders = list[tuple[bytes, bytes]]


def _rewriting_start(send: Send, rewrite: Callable[[RawHeaders], RawHeaders]) -> Callable[[Message], Awaitable[None]]:
    async def rewritten(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": rewrite([(bytes(k), bytes(v)) for k, v in message.get("headers", [])])}
        await send(message)

    return rewritten


def _secure_cookies(headers: RawHeaders) -> RawHeaders:
    return [
        (name, value + b"; Secure") if name.lower() == b"set-cookie" and not _is_secure(value) else (name, value)
        for name, value in headers
    ]


def _is_secure(cookie: bytes) -> bool:
    return any(attribute.strip().lower() == b"secure" for attribute in cookie.split(b";")[1:])


def _private_caching(headers: RawHeaders) -> RawHeaders:
    kept = [(name, value) for name, value in headers if name.lower() != b"cache-control"]
    directives = [
        part.strip()
        for name, value in headers
        if name.lower() == b"cache-control"
        for part in value.split(b",")
        if part.strip() and part.strip().lower() not in (b"public", b"private")
    ]
    return [*kept, (b"cache-control", b", ".join([b"private", *directives]))]


def _add_security_headers(headers: RawHeaders) -> RawHeaders:
    present = {name.lower() for name, _value in headers}
    return headers + [(name, value) for name, value in SECURITY_HEADERS if name not in present]
