"""serve's access log: uvicorn's own format, with the token of a login link redacted."""

from __future__ import annotations

import logging

from uvicorn.logging import AccessFormatter

from app.web.server import RedactLoginTokens, uvicorn_options

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'  # how uvicorn's h11 and httptools protocols log a request


def logged(path: str) -> str:
    """Return the access-log line of a GET of `path`, as serve writes it."""
    args = ("127.0.0.1:5", "GET", path, "1.1", 303)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 0, ACCESS_FORMAT, args, None)
    assert RedactLoginTokens().filter(record)
    return AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)


def test_the_access_log_redacts_login_tokens() -> None:
    assert (
        logged("/login?token=na_SECRET&next=/")
        == '127.0.0.1:5 - "GET /login?token=[redacted]&next=/ HTTP/1.1" 303 See Other'
    )
    assert logged("/runs/1") == '127.0.0.1:5 - "GET /runs/1 HTTP/1.1" 303 See Other'
    config = uvicorn_options(proxy_headers=False, forwarded_allow_ips="127.0.0.1", limit_concurrency=8)["log_config"]
    assert config["loggers"]["uvicorn.access"]["filters"] == ["login_tokens"]
    assert config["filters"]["login_tokens"]["()"] is RedactLoginTokens
