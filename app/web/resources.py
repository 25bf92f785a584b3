"""One declaration per resource: a function returning its schema, served as JSON under /api/v1 and as HTML without.

The function is the JSON route as written (FastAPI derives its OpenAPI from it). The HTML route at the same path
without the prefix calls the same function and answers the browser from its result: a page (for htmx, the page's
fragment) or a redirect. This is fasthx's `Jinja.page()` with a component selector and a `make_context` factory,
reworked where fasthx does not fit: its renderer binds one Jinja2Templates when routes are declared, while these
routers are module-level and each app has its own templates; its `hx()` answers JSON and HTML at one path and
counts history restores as htmx; and a page's own parameters (grid state, form fields) have to join the HTML
route alone, so the API keeps its parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from app.core.urls import API_PREFIX
from app.web.deps import TemplatesDep
from app.web.errors import WRITE_ERRORS
from app.web.middleware.response_cache import ImmutableRoute
from app.web.views.htmx import HtmxAwareRoute, is_htmx, trigger

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
#: `(result, **params)` (or `(**params)` for a page context) -> template context.
ContextFactory = Callable[..., Mapping[str, object]]
#: Picks the fragment template from the request, like fasthx's component selectors.
FragmentSelector = Callable[[Request], str]

# Parameters every HTML endpoint gets, named so that no resource or page parameter clashes with them.
_REQUEST = "answer_request"
_TEMPLATES = "answer_templates"


@dataclass(frozen=True)
class Page:
    """A resource shown as a page: its template, the fragment htmx gets instead, and what they show.

    `context(result, **params)` returns what both show; `page_context(**params)` what only the full page adds.
    Their parameters besides the result join the HTML route; one named like a parameter of the resource replaces
    it there (so a page can make a required `q` optional). Errors of the `shown_errors` types are shown in place
    of the result: `context` receives the error.
    """

    template: str
    context: ContextFactory
    fragment: str | FragmentSelector | None = None
    page_context: ContextFactory | None = None
    shown_errors: tuple[type[Exception], ...] = ()
    #: Returns the htmx event sent with the fragment of a result, or None.
    fragment_event: Callable[[Any], str | None] | None = None
    #: The page derives from a stored run alone: rendered bodies are kept and replayed.
    immutable: bool = False


@dataclass(frozen=True)
class Redirect:
    """A resource answered with a redirect: an action goes on to a page, a permalink to what it names.

    `to(result, **params)` returns the URL (without `to`, the result is the URL); its parameters besides the result
    join the route. With an `htmx_event`, htmx gets 204 and that event instead: the page updates in place.
    """

    to: Callable[..., str] | None = None
    status_code: int = 303
    htmx_event: str | None = None


@dataclass(frozen=True)
class _Call:
    """A function with the route parameters it takes (after the result, for one that takes the result)."""

    function: Callable[..., Any]
    parameters: tuple[inspect.Parameter, ...]

    @classmethod
    def of(cls, function: Callable[..., Any], *, takes_result: bool = False) -> _Call:
        """Return the call of a function, its parameters made keyword-only so that they can be merged."""
        parameters = list(inspect.signature(function, eval_str=True).parameters.values())[1 if takes_result else 0 :]
        return cls(function, tuple(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY) for parameter in parameters))

    def __call__(self, params: Mapping[str, Any], *result: Any) -> Any:
        """Return the function's answer to the route parameters it takes (and the result, when given); a parameter
        taking the request gets the HTML route's own (FastAPI hands a route's request to one parameter only)."""
        return self.function(
            *result,
            **{
                parameter.name: params[_REQUEST] if parameter.annotation is Request else params[parameter.name]
                for parameter in self.parameters
            },
        )


def _as_endpoint(
    function: Callable[..., Any], calls: list[_Call], answer: Callable[..., Response], reserved: Mapping[str, Any]
) -> Callable[..., Any]:
    """Return `answer` as an endpoint named like `function`, taking the calls' and the reserved parameters."""
    parameters: dict[str, inspect.Parameter] = {}
    for call in calls:
        for parameter in call.parameters:
            if parameter.annotation is not Request:  # given the reserved request (_Call.__call__)
                parameters[parameter.name] = parameter  # a later (page) declaration replaces the resource's
    for name, annotation in reserved.items():
        parameters[name] = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
    answer.__signature__ = inspect.Signature(list(parameters.values()), return_annotation=Response)  # type: ignore[attr-defined]
    answer.__name__, answer.__qualname__, answer.__doc__ = function.__name__, function.__qualname__, function.__doc__
    return answer


def _redirecting(function: Callable[..., Any], redirect: Redirect) -> Callable[..., Any]:
    """Return an endpoint that calls the resource function, then redirects to where its result says."""
    resource = _Call.of(function)
    to = _Call.of(redirect.to, takes_result=True) if redirect.to is not None else None

    def answer(**params: Any) -> Response:
        result = resource(params)
        if redirect.htmx_event is not None and is_htmx(params[_REQUEST].headers):
            return trigger(Response(status_code=204), redirect.htmx_event)
        return RedirectResponse(to(params, result) if to is not None else result, status_code=redirect.status_code)

    return _as_endpoint(function, [resource] + ([to] if to is not None else []), answer, {_REQUEST: Request})


def _rendering(function: Callable[..., Any], page: Page) -> Callable[..., Any]:
    """Return an endpoint that calls the resource function, then renders its result: the page, or its fragment."""
    resource = _Call.of(function)
    context = _Call.of(page.context, takes_result=True)
    page_context = _Call.of(page.page_context) if page.page_context is not None else None

    def answer(**params: Any) -> Response:
        request: Request = params[_REQUEST]
        try:
            result = resource(params)
        except page.shown_errors as error:
            result = error
        values = dict(context(params, result))
        event = None
        if page.fragment is not None and is_htmx(request.headers):
            name = page.fragment if isinstance(page.fragment, str) else page.fragment(request)
            event = page.fragment_event(result) if page.fragment_event is not None else None
        else:
            name = page.template
            if page_context is not None:
                values = {**page_context(params), **values}
        response = params[_TEMPLATES].TemplateResponse(request, name, values)
        return trigger(response, event) if event else response

    calls = [resource, context] + ([page_context] if page_context is not None else [])
    return _as_endpoint(function, calls, answer, {_REQUEST: Request, _TEMPLATES: TemplatesDep})


def _answering(function: Callable[..., Any], answer: Page | Redirect) -> Callable[..., Any]:
    """Return the endpoint answering a resource function's result as `answer` says."""
    return _redirecting(function, answer) if isinstance(answer, Redirect) else _rendering(function, answer)


def _html_route_class(answer: Page | Redirect) -> type[APIRoute] | None:
    """Return the route class an HTML answer needs: kept when immutable, varying when htmx gets a fragment."""
    if isinstance(answer, Page) and answer.immutable:
        return ImmutableRoute
    if isinstance(answer, Page) and answer.fragment is not None:
        return HtmxAwareRoute
    return None


def resource(
    router: APIRouter,
    path: str,
    *,
    html: Page | Redirect | None,
    json: Redirect | None = None,
    method: str = "GET",
    immutable: bool = False,
    **api_options: Any,
) -> Callable[[Endpoint], Endpoint]:
    """Return a decorator serving a function at API_PREFIX + path (its JSON) and at path (the `html` answer).

    `json` makes the API answer a redirect too (a permalink points at its API twin); `immutable` keeps the JSON
    bodies; `api_options` (tags, status_code, …) go to the API route, which documents WRITE_ERRORS unless a GET.
    """

    if method != "GET":
        api_options = {**api_options, "responses": {**WRITE_ERRORS, **api_options.get("responses", {})}}

    def register(function: Endpoint) -> Endpoint:
        router.add_api_route(
            API_PREFIX + path,
            function if json is None else _answering(function, json),
            methods=[method],
            route_class_override=ImmutableRoute if immutable else None,
            **api_options,
        )
        if html is not None:
            router.add_api_route(
                path,
                _answering(function, html),
                methods=[method],
                name=f"{function.__name__}_page",
                include_in_schema=False,
                response_class=HTMLResponse,
                route_class_override=_html_route_class(html),
            )
        return function

    return register
