"""A short client of a neuron-atlas server's JSON API (/api/v1): list runs, read a layer's neurons as a DataFrame,
rank a concept, read a neuron's evidence, and push a saved run.

    client = Client("https://atlas.example.org", token="...")
    client.neurons(42, "layer4").sort_values("explained_r")
    client.push("my-run")   # -> "https://atlas.example.org/runs/43"
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

import httpx

from dissect_core.errors import DissectError

if TYPE_CHECKING:
    import pandas as pd

#: The environment variable a token is read from when none is passed.
TOKEN_ENV = "NEURON_ATLAS_TOKEN"
API_PREFIX = "/api/v1"
#: The list keys older servers answered with before the one envelope (`items`, `next`).
_OLD_LIST_KEYS = ("neurons", "hits")
#: Items asked for per page while walking a list.
PAGE_SIZE = 500


class Client:
    """The JSON API of the neuron-atlas server at `url`, as `token`'s user (argument, else NEURON_ATLAS_TOKEN;
    reading a public server needs none). `transport`: an httpx transport, for tests."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token or os.environ.get(TOKEN_ENV) or None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def runs(self) -> pd.DataFrame:
        """Return every run the server shows this user, one row each (newest first, as the server lists them)."""
        import pandas as pd

        return pd.DataFrame(self._items(f"{API_PREFIX}/runs"))

    def neurons(self, run: int, layer: str) -> pd.DataFrame:
        """Return every neuron of a run's layer, one row each in unit order (all pages walked)."""
        import pandas as pd

        return pd.DataFrame(self._items(f"{API_PREFIX}/runs/{run}/layers/{quote(layer, safe='')}/neurons"))

    def rank_concept(self, run: int, q: str, layer: str | None = None) -> pd.DataFrame:
        """Return the units of every layer of a run (or of `layer`) ranked by concept `q`, best first."""
        import pandas as pd

        params = {"q": q, **({"layer": layer} if layer else {})}
        try:
            return pd.DataFrame(self._items(f"{API_PREFIX}/runs/{run}/concepts", params))
        except _NotFound:
            if layer is None:
                raise DissectError(
                    f"{self.url} has no cross-layer concept ranking; upgrade the server or pass layer="
                ) from None
        # A server from before the cross-layer ranking: its per-layer search.
        return pd.DataFrame(self._items(f"{API_PREFIX}/runs/{run}/layers/{quote(layer, safe='')}/concepts", {"q": q}))

    def neuron(self, run: int, layer: str, unit: int) -> dict[str, Any]:
        """Return one neuron's evidence: label, runners-up, evaluation, verdict, top images and their URLs."""
        return self._get(f"{API_PREFIX}/runs/{run}/layers/{quote(layer, safe='')}/neurons/{int(unit)}")

    def push(self, folder: str | Path) -> str:
        """Upload a saved run's folder (DissectionResult.save) as one .tar.gz; return the stored run's page URL."""
        root = Path(folder).expanduser()
        if not (root / "manifest.json").is_file():
            raise DissectError(f"{root} is not a saved run (no manifest.json); write one with result.save(folder)")
        if not self.token:
            raise DissectError(
                f"pushing a run needs an editor's API token; pass token= (or --token) or set {TOKEN_ENV}, "
                "with a token made on your account page"
            )
        with tempfile.TemporaryFile() as archive:
            with tarfile.open(fileobj=archive, mode="w:gz") as tar:
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
            archive.seek(0)
            response = self._send(
                "POST", f"{API_PREFIX}/runs", files={"archive": (f"{root.name}.tar.gz", archive, "application/gzip")}
            )
        if response.status_code != 201:
            raise DissectError(f"the server did not store the run: {_problem(response)}")
        return str(response.json()["url"])

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _items(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Return every item of a list, following `next` from page to page (a bare list or an old key is one page)."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, Any] | None = {**(params or {}), "limit": PAGE_SIZE}
        while url is not None:
            body = self._get(url, query)
            query = None  # `next` carries the query on
            if isinstance(body, list):
                return body
            page = body.get("items")
            if page is None:
                page = next((body[key] for key in _OLD_LIST_KEYS if key in body), None)
                if page is None:
                    raise DissectError(f"{self.url}{path} answered no list (keys: {', '.join(body)})")
                return list(page)
            items.extend(page)
            url = urljoin(f"{self.url}{path}", body["next"]) if body.get("next") else None
        return items

    def _get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        response = self._send("GET", url, params=params)
        if response.status_code == 404:
            raise _NotFound(f"{url}: {_problem(response)}")
        if response.status_code != 200:
            raise DissectError(f"GET {url} failed: {_problem(response)}")
        return response.json()

    def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **options)
        except httpx.HTTPError as error:
            raise DissectError(f"could not reach {self.url} ({type(error).__name__}: {error}); check the URL") from None


class _NotFound(DissectError):
    """The server answered 404."""


def _problem(response: httpx.Response) -> str:
    """Return the status and the server's own message (FastAPI's `detail`) of a failed request."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text[:300]
    reasons = {401: "log in: pass an API token", 403: "this token's user may not do that (editors and admins push)"}
    hint = f" ({reasons[response.status_code]})" if response.status_code in reasons else ""
    return f"{response.status_code} {detail or response.reason_phrase}{hint}"
