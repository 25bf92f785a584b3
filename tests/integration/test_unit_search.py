"""Which units detect X? The cross-layer concept ranking, the one search box (word forms, near concepts, the
fallback to the ranking), the concept carried to a unit's page and back, the run page's "what it found", class
names in the grid filter and the grid's default order by r, through the real app (tests/support/search_seed.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.support.dashboard_seed import DIMENSIONS, Dashboard, SeededRun, seeded_r
from tests.support.search_seed import CLASS_NAMES, FUR, SEARCH_LAYERS, build_search_dashboard

RANKED_FIELDS = {
    "layer",
    "layer_position",
    "unit",
    "label",
    "label_score",
    "verdict",
    "reliable",
    "explained_r",
    "class_name",
    "crop_urls",
    "url",
    "score",
    "standardised_score",
    "rank",
    "n_units",
}
N_UNITS = sum(layer.n_units for layer in SEARCH_LAYERS)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, SeededRun]]:
    """The graded `searchnet` run with "dogs", "canine" and "stripes" labels and named classes."""
    dashboard, run = build_search_dashboard(tmp_path_factory.mktemp("search") / "data")
    yield dashboard, run
    dashboard.engine.dispose()


@pytest.fixture(scope="module")
def client(seeded: tuple[Dashboard, SeededRun]) -> Iterator[TestClient]:
    """A client on the app over the seeded run, as the admin."""
    dashboard, _ = seeded
    with TestClient(dashboard.app(), headers=dashboard.admin_headers) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def run_id(seeded: tuple[Dashboard, SeededRun]) -> int:
    return seeded[1].run_id


def walk(client: TestClient, url: str, **params: object) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Return every item of a paged list, following `next`, and the pages."""
    pages = [client.get(url, params=params).json()]
    while pages[-1]["next"]:
        assert pages[-1]["next"].startswith("/api/v1/")
        pages.append(client.get(pages[-1]["next"]).json())
    return [item for page in pages for item in page["items"]], pages


def test_the_cross_layer_ranking_pages_through_every_unit_of_every_layer(client: TestClient, run_id: int) -> None:
    items, pages = walk(client, f"/api/v1/runs/{run_id}/concepts", q="dog", limit=100)
    assert len(pages) == -(-N_UNITS // 100) and all(page["total"] == N_UNITS for page in pages)
    assert len(items) == N_UNITS
    assert {(item["layer"], item["unit"]) for item in items} == {
        (layer.name, unit) for layer in SEARCH_LAYERS for unit in range(layer.n_units)
    }
    assert all(set(item) == RANKED_FIELDS for item in items)
    first = pages[0]
    assert first["concept"] == "dog" and first["layers"] == [layer.name for layer in SEARCH_LAYERS]
    assert first["warning"] is None and first["n_carrying"] == 12 and first["encoder_blind"] is False
    standardised = [item["standardised_score"] for item in items]
    assert standardised == sorted(standardised, reverse=True)
    best = items[0]
    assert best["unit"] % DIMENSIONS == FUR and best["rank"] == 1
    assert best["crop_urls"] and best["url"].endswith(f"/neurons/{best['unit']}?concept=dog")
    assert best["verdict"] in {"explains", "weak", "no label"} and best["explained_r"] is not None
    fc_unit = next(item for item in items if item["layer"] == "fc" and item["unit"] == 1)
    assert fc_unit["class_name"] == "goldfinch" and fc_unit["n_units"] == 10


def test_ranks_within_a_layer_agree_with_the_layers_own_concept_search(client: TestClient, run_id: int) -> None:
    for layer in SEARCH_LAYERS:
        own = client.get(f"/api/v1/runs/{run_id}/layers/{layer.name}/concepts", params={"q": "dog", "limit": 5})
        ranked = client.get(f"/api/v1/runs/{run_id}/concepts", params={"q": "dog", "layer": layer.name, "limit": 5})
        assert ranked.status_code == 200 and ranked.json()["total"] == layer.n_units
        own_units = [hit["unit"] for hit in own.json()["items"]]
        assert [item["unit"] for item in ranked.json()["items"]] == own_units
        assert [item["rank"] for item in ranked.json()["items"]] == [1, 2, 3, 4, 5]


def test_the_ranking_warns_when_the_encoder_cannot_see_the_concept(client: TestClient, run_id: int) -> None:
    ranking = client.get(f"/api/v1/runs/{run_id}/concepts", params={"q": "purple", "limit": 1}).json()
    assert ranking["encoder_blind"] is True and "does not recognise 'purple'" in ranking["warning"]
    page = client.get(f"/runs/{run_id}/search", params={"q": "purple"}).text
    assert 'id="coverage-warning"' in page and "does not recognise" in page


def test_the_ranking_names_a_missing_layer_and_refuses_a_blank_concept(client: TestClient, run_id: int) -> None:
    missing = client.get(f"/api/v1/runs/{run_id}/concepts", params={"q": "dog", "layer": "nope"})
    assert missing.status_code == 404 and "conv1" in missing.json()["detail"]
    assert client.get(f"/api/v1/runs/{run_id}/concepts", params={"q": "  "}).status_code == 422


def test_dog_finds_units_labelled_dogs_and_the_near_concept_canine(client: TestClient, run_id: int) -> None:
    result = client.get(f"/api/v1/runs/{run_id}/search", params={"q": "dog", "limit": 500}).json()
    assert "dogs" in result["word_forms"]
    # "canine" leans as "dog" does off the fur direction; "fur" (the final layer's unit 2) is near too.
    assert [near["concept"] for near in result["near_concepts"]] == ["canine", "fur"]
    by_label = {(item["label"], item["matched"]) for item in result["items"]}
    assert by_label == {("dogs", "label"), ("canine", "near"), ("fur", "near")}
    assert result["total"] == 64 // DIMENSIONS + 256 // DIMENSIONS + 1
    items = result["items"]
    assert all(item["standardised_score"] is not None and item["url"].endswith("?concept=dog") for item in items)
    assert result["ranking"]["total"] == N_UNITS and len(result["ranking"]["items"]) == 24


def test_word_forms_find_labels_in_other_forms(client: TestClient, run_id: int) -> None:
    for q in ("stripe", "striped"):
        items = client.get(f"/api/v1/runs/{run_id}/search", params={"q": q, "limit": 500}).json()["items"]
        assert {item["label"] for item in items} >= {"stripes"}, q
    grid = client.get(f"/api/v1/runs/{run_id}/layers/blocks.3/neurons", params={"q": "stripe", "limit": 500}).json()
    assert {neuron["label"] for neuron in grid["items"]} == {"stripes"}  # the grid filter applies the same rule


def test_hits_sort_by_r_score_and_layer(client: TestClient, run_id: int) -> None:
    url = f"/api/v1/runs/{run_id}/search"
    by_r = client.get(url, params={"q": "dog", "sort": "r", "limit": 500}).json()["items"]
    rs = [item["explained_r"] for item in by_r]
    assert rs == sorted(rs, reverse=True)
    by_score = client.get(url, params={"q": "dog", "sort": "score", "limit": 500}).json()["items"]
    scores = [item["standardised_score"] for item in by_score]
    assert scores == sorted(scores, reverse=True)
    by_layer = client.get(url, params={"q": "dog", "limit": 500}).json()["items"]
    assert [item["layer_position"] for item in by_layer] == sorted(item["layer_position"] for item in by_layer)
    assert client.get(url, params={"q": "dog", "sort": "label"}).status_code == 422


def test_the_search_pages_through_its_hits(client: TestClient, run_id: int) -> None:
    items, pages = walk(client, f"/api/v1/runs/{run_id}/search", q="dog", limit=10)
    assert len(pages) == 5 and len({(item["layer"], item["unit"]) for item in items}) == pages[0]["total"] == 41


def test_a_query_no_label_matches_falls_back_to_the_concept_ranking(client: TestClient, run_id: int) -> None:
    result = client.get(f"/api/v1/runs/{run_id}/search", params={"q": "pretzel"}).json()
    assert result["total"] == 0 and result["near_concepts"] == []
    assert result["ranking"]["total"] == N_UNITS and result["ranking"]["items"]
    page = client.get(f"/runs/{run_id}/search", params={"q": "pretzel"}).text
    assert 'id="no-label-fallback"' in page
    assert page.index('id="concept-ranking"') < page.index('id="label-hits"')  # the ranking comes first
    assert len(re.findall(r'<tr>\s*<td class="mono">', page[page.index('id="ranking-table"') :])) == 24


def test_the_search_page_shows_units_with_crops_r_and_verdict(client: TestClient, run_id: int) -> None:
    page = client.get(f"/runs/{run_id}/search", params={"q": "dog", "sort": "r"}).text
    assert 'id="label-hit-table"' in page and 'id="ranking-table"' in page
    assert ">canine<" in page and 'class="chip small"' in page  # a near-concept hit, marked
    assert 'class="grade grade-' in page and "?concept=dog" in page and 'class="hit-crops"><img' in page
    assert '<option value="r" selected>' in page
    assert "Type part of a label" in client.get(f"/runs/{run_id}/search").text


def test_a_unit_number_is_searched_as_a_unit_not_ranked_as_a_concept(client: TestClient, run_id: int) -> None:
    result = client.get(f"/api/v1/runs/{run_id}/search", params={"q": "#3"}).json()
    assert result["ranking"] is None and {item["unit"] for item in result["items"]} == {3}


def test_the_concept_carries_into_the_units_page_and_back(client: TestClient, run_id: int) -> None:
    page = client.get(f"/runs/{run_id}/layers/conv1/neurons/{FUR}", params={"concept": "dog"}).text
    assert 'value="dog"' in page  # the concept box is filled
    assert f'hx-get="/runs/{run_id}/layers/conv1/neurons/{FUR}/concept?q=dog"' in page  # and scores it on load
    back = re.search(r'id="concept-back"><a href="([^"]+)"', page)
    assert back is not None and parse_qs(urlsplit(back.group(1).replace("&amp;", "&")).query) == {"q": ["dog"]}
    scored = client.get(f"/runs/{run_id}/layers/conv1/neurons/{FUR}/concept", params={"q": "dog"}).text
    assert "this neuron ranks" in scored and 'id="concept-back"' in scored
    plain = client.get(f"/runs/{run_id}/layers/conv1/neurons/{FUR}").text
    assert 'id="concept-back"' not in plain


def test_the_run_page_shows_what_it_found(client: TestClient, run_id: int) -> None:
    page = client.get(f"/runs/{run_id}").text
    assert 'id="how-to-read"' in page and 'id="run-findings"' in page and 'id="run-search"' in page
    findings = page[page.index('id="run-findings"') :]
    for position, layer in enumerate(SEARCH_LAYERS):
        block = findings[findings.index(f'id="finding-{position}"') :]
        block = block[: block.index("</article>")]
        best = max(
            (unit for unit in range(layer.n_units) if seeded_r(position, unit) >= 0.17),
            key=lambda unit: (seeded_r(position, unit), -unit),
        )
        assert f"/neurons/{best}" in block, layer.name  # the best-explained unit leads its layer
        assert "Most common" in block
    fc = findings[findings.index('id="finding-2"') :]
    fc = fc[: fc.index("</article>")]
    assert "class · " in fc and any(name in fc for name in CLASS_NAMES)
    assert "dogs <span" in findings  # a common label with its count, linking to its search


def test_class_names_filter_the_final_layers_grid(client: TestClient, run_id: int) -> None:
    grid = client.get(f"/api/v1/runs/{run_id}/layers/fc/neurons", params={"q": "goldfinch"}).json()
    assert [neuron["unit"] for neuron in grid["items"]] == [1]
    hits = client.get(f"/api/v1/runs/{run_id}/search", params={"q": "goldfinch"}).json()["items"]
    assert [(item["layer"], item["unit"], item["class_name"]) for item in hits] == [("fc", 1, "goldfinch")]


def test_the_layer_grid_opens_best_explained_first_and_keeps_explicit_sorts(client: TestClient, run_id: int) -> None:
    cards = [int(unit) for unit in re.findall(r'id="unit-(\d+)"', client.get(f"/runs/{run_id}/layers/conv1").text)]
    rs = [seeded_r(0, unit) for unit in cards]
    assert rs == sorted(rs, reverse=True) and cards[0] == max(range(64), key=lambda unit: (seeded_r(0, unit), -unit))
    by_unit = client.get(f"/runs/{run_id}/layers/conv1", params={"sort": "unit"}).text
    assert [int(unit) for unit in re.findall(r'id="unit-(\d+)"', by_unit)][:5] == [0, 1, 2, 3, 4]
