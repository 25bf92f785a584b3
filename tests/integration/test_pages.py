"""The HTML pages through the real app on a seeded SQLite file: grid state in the URL, htmx fragments, forms."""

from __future__ import annotations

import io
import re

import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.jobs.queue import jobs as queue
from app.persistence.db import write_session
from app.persistence.models import Job
from tests.support.dashboard_seed import Dashboard, TinyNet, seed_run

LAYER = "blocks.3"
HX = {"HX-Request": "true"}


def layer_path(dashboard: Dashboard, layer: str = LAYER) -> str:
    return f"/runs/{dashboard.newer.run_id}/layers/{layer}"


def card_units(html: str) -> list[int]:
    return [int(unit) for unit in re.findall(r'id="unit-(\d+)"', html)]


def count_jobs(dashboard: Dashboard) -> int:
    with Session(dashboard.engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_home_lists_runs_jobs_and_the_upload_link(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get("/").text
    assert f'href="/runs/{dashboard.newer.run_id}"' in html and "tinynet" in html
    assert 'href="/upload"' in html and "<h2>Jobs</h2>" in html
    assert html.index(f"#{dashboard.newer.run_id}<") < html.index(f"#{dashboard.older.run_id}<")


def test_run_page_lists_layers_with_links(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(f"/runs/{dashboard.newer.run_id}").text
    assert f'href="{layer_path(dashboard)}"' in html and "2,048" in html and "soft_wpmi" in html


def test_layer_page_shows_one_page_of_cards_with_pager_and_switcher(client: TestClient, dashboard: Dashboard) -> None:
    response = client.get(layer_path(dashboard))
    assert response.status_code == 200 and "HX-Request" in response.headers["vary"]
    html = response.text
    assert card_units(html) == list(range(96))
    assert "page 1 of 22" in html and f'href="{layer_path(dashboard)}?page=2"' in html
    assert 'hx-get="' + layer_path(dashboard) + '?page=2&amp;start=1&amp;part=cards"' in html
    assert html.count('<img src="/media/') == 96 * 5
    assert '<option value="conv1"' in html and '<option value="fc"' in html
    assert "bottom quartile" in html and "25th percentile" in html


def test_grid_state_lives_in_the_url(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(layer_path(dashboard), params={"sort": "-score", "q": "sky", "page": 2}).text
    assert '<option value="-score" selected>' in html and 'value="sky"' in html
    assert "page 2 of 3" in html
    assert f"{layer_path(dashboard)}?q=sky&amp;sort=-score&amp;page=3" in html
    assert f"{layer_path(dashboard)}?q=sky&amp;sort=-score" in html  # previous page: page 1 has no parameter
    units = card_units(html)
    assert len(units) == 96 and all(unit % 8 == 1 for unit in units)


def test_low_confidence_cards_are_muted_with_an_explanation(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(layer_path(dashboard), params={"sort": "score"}).text
    start = html.index('<a class="card')
    first_card = html[start : html.index("</a>", start)]
    assert 'class="card low"' in first_card and "below this layer's 25th percentile" in first_card
    best = client.get(layer_path(dashboard), params={"sort": "-score"}).text
    assert 'class="card low"' not in best


def test_htmx_gets_the_grid_or_the_next_cards_alone(client: TestClient, dashboard: Dashboard) -> None:
    grid = client.get(layer_path(dashboard), params={"q": "fur"}, headers=HX)
    assert "<html" not in grid.text and 'class="cards"' in grid.text and "HX-Request" in grid.headers["vary"]
    more = client.get(layer_path(dashboard), params={"page": 2, "part": "cards"}, headers=HX).text
    assert "<html" not in more and 'class="cards"' not in more
    assert card_units(more) == list(range(96, 192)) and "Load 96 more" in more
    last = client.get(layer_path(dashboard), params={"page": 22, "part": "cards"}, headers=HX).text
    assert card_units(last) == list(range(2016, 2048)) and "load-more" not in last


def test_past_the_last_page_and_empty_filters_are_explained(client: TestClient, dashboard: Dashboard) -> None:
    response = client.get(layer_path(dashboard), params={"page": 23})
    assert response.status_code == 404 and "22 pages" in response.text
    empty = client.get(layer_path(dashboard), params={"q": "zeppelin"}).text
    assert "No neuron label matches" in empty and card_units(empty) == []


def test_layer_switcher_redirects_to_the_chosen_layer(client: TestClient, dashboard: Dashboard) -> None:
    response = client.get(f"/runs/{dashboard.newer.run_id}/layers", params={"layer": "fc"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == layer_path(dashboard, "fc")


def test_neuron_permalink_page(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(f"{layer_path(dashboard)}/neurons/11").text
    assert "<h1" in html and "striped" in html
    assert f'rel="prev" href="{layer_path(dashboard)}/neurons/10"' in html
    assert f'rel="next" href="{layer_path(dashboard)}/neurons/12"' in html
    assert f'data-copy-link="{layer_path(dashboard)}/neurons/11"' in html
    assert html.count('class="box" style="left:') == 5 and 'class="heatmap"' in html and "heatmap-toggle" in html
    assert "Runners-up" in html and "fur 1" not in html and "wheel 1" in html
    assert "soft_wpmi" in html and "fake:encoder" in html


def test_neuron_page_edges_and_missing_unit(client: TestClient, dashboard: Dashboard) -> None:
    first = client.get(f"{layer_path(dashboard, 'fc')}/neurons/0").text
    assert 'rel="prev"' not in first.split("</head>")[1] and 'rel="next"' in first
    assert "heatmap-toggle" not in first  # a linear layer has no maps
    missing = client.get(f"{layer_path(dashboard, 'fc')}/neurons/10")
    assert missing.status_code == 404 and "units 0–9" in missing.text


def test_model_permalink_redirects_to_the_latest_run(client: TestClient, dashboard: Dashboard) -> None:
    response = client.get("/models/tinynet/layers/blocks.3/neurons/5", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"{layer_path(dashboard)}/neurons/5"
    missing = client.get("/models/alexnet/layers/fc/neurons/1")
    assert missing.status_code == 404 and "the models with runs are: tinynet" in missing.text


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/runs/999", ["There is no run 999"]),
        ("/runs/{run}/layers/blocks.9", ["no layer", "conv1, blocks.3, fc"]),
        ("/jobs/777", ["no job 777"]),
        ("/nowhere", ["no page at /nowhere"]),
        ("/runs/abc", ["run_id"]),
    ],
)
def test_error_pages_are_html_and_helpful(
    client: TestClient, dashboard: Dashboard, path: str, words: list[str]
) -> None:
    response = client.get(path.format(run=dashboard.newer.run_id))
    assert response.status_code in (404, 422) and response.headers["content-type"].startswith("text/html")
    assert all(word in response.text for word in words), response.text[-600:]


def test_search_page(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(f"/runs/{dashboard.newer.run_id}/search", params={"q": "brick"}).text
    assert "265 neurons in 3 layers" in html
    assert f'href="{layer_path(dashboard)}/neurons/7?concept=brick"' in html  # the concept carries to the unit
    assert "Type part of a label" in client.get(f"/runs/{dashboard.newer.run_id}/search").text


def test_concept_search_fragment_and_full_page(client: TestClient, dashboard: Dashboard) -> None:
    fragment = client.get(f"{layer_path(dashboard)}/concepts", params={"q": "striped"}, headers=HX)
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["vary"]
    ranked = re.findall(r'<a class="mono" href="[^"]+/neurons/(\d+)">', fragment.text)
    assert ranked[0] == "3" and len(ranked) == 24
    page = client.get(f"{layer_path(dashboard)}/concepts", params={"q": "striped"}).text
    assert "<html" in page and 'value="striped"' in page and card_units(page)[:3] == [0, 1, 2]
    blank = client.get(f"{layer_path(dashboard)}/concepts", params={"q": "x" * 300}, headers=HX).text
    assert "at most 200 characters" in blank


def test_neuron_concept_fragment_shows_rank(client: TestClient, dashboard: Dashboard) -> None:
    fragment = client.get(f"{layer_path(dashboard)}/neurons/3/concept", params={"q": "striped"}, headers=HX).text
    assert "<html" not in fragment and "ranks <strong" in fragment and ">1</strong> of" in fragment
    page = client.get(f"{layer_path(dashboard)}/neurons/3/concept", params={"q": "striped"}).text
    assert "<html" in page and "ranks <strong" in page


def test_keep_concept_then_relabel_goes_to_the_job(client: TestClient, dashboard: Dashboard) -> None:
    run_id = dashboard.newer.run_id
    kept = client.post(f"/runs/{run_id}/typed-concepts", data={"text": "polka dots"}, headers=HX)
    assert kept.status_code == 204 and kept.headers["HX-Trigger"] == "typed-concepts-changed"
    back = client.post(
        f"/runs/{run_id}/typed-concepts",
        data={"text": "zigzag", "back": layer_path(dashboard)},
        follow_redirects=False,
    )
    assert back.status_code == 303 and back.headers["location"] == layer_path(dashboard)
    evil = client.post(
        f"/runs/{run_id}/typed-concepts", data={"text": "x", "back": "//evil.example"}, follow_redirects=False
    )
    assert evil.headers["location"] == f"/runs/{run_id}"
    panel = client.get(f"/runs/{run_id}/typed-concepts", headers=HX).text
    assert "polka dots" in panel and "zigzag" in panel and "Add 3 to vocabulary" in panel
    relabel = client.post(f"/runs/{run_id}/relabel", follow_redirects=False)
    assert relabel.status_code == 303 and relabel.headers["location"].startswith("/jobs/")


def test_job_page_polls_until_the_job_finishes(client: TestClient, dashboard: Dashboard) -> None:
    with write_session(dashboard.engine) as session:
        job = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": "cifar100"})
        job_id = job.id
    page = client.get(f"/jobs/{job_id}").text
    assert f'hx-get="/jobs/{job_id}" hx-trigger="every 1s"' in page and "queued" in page
    assert '<meta http-equiv="refresh"' in page  # readable without JavaScript too
    claimed = queue.claim_next(dashboard.engine, "test-worker")
    while claimed is not None and claimed.id != job_id:
        queue.cancel(dashboard.engine, claimed.id)
        claimed = queue.claim_next(dashboard.engine, "test-worker")
    queue.report_progress(dashboard.engine, job_id, "test-worker", "activations", 3, 12)
    running = client.get(f"/jobs/{job_id}", headers=HX)
    assert "<html" not in running.text and "3 / 12" in running.text and "every 1s" in running.text
    assert "HX-Trigger" not in running.headers
    queue.finish(dashboard.engine, job_id, "test-worker", dashboard.newer.run_id)
    done = client.get(f"/jobs/{job_id}", headers=HX)
    assert "every 1s" not in done.text and f'href="/runs/{dashboard.newer.run_id}"' in done.text
    assert done.headers["HX-Trigger"] == "job-finished"


def claim_only(dashboard: Dashboard, job_id: int) -> None:
    """Claim the job for "test-worker", cancelling any job queued before it."""
    claimed = queue.claim_next(dashboard.engine, "test-worker")
    while claimed is not None and claimed.id != job_id:
        queue.cancel(dashboard.engine, claimed.id)
        claimed = queue.claim_next(dashboard.engine, "test-worker")
    assert claimed is not None


def visible_text(html: str) -> str:
    """Return the page's text as a reader sees it: tags dropped, runs of white space as one space."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


@pytest.mark.parametrize("ending", ["finish", "mark_cancelled"])
def test_a_finished_job_shows_no_stale_progress(client: TestClient, dashboard: Dashboard, ending: str) -> None:
    with write_session(dashboard.engine) as session:
        job_id = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": ending}).id
    claim_only(dashboard, job_id)
    queue.report_progress(dashboard.engine, job_id, "test-worker", "probe pass", 0, 4)
    queue.cancel(dashboard.engine, job_id)  # a running job: asked to stop
    running = visible_text(client.get(f"/jobs/{job_id}", headers=HX).text)
    assert "probe pass cancelling…" in running and "0 / 4" in running
    if ending == "finish":
        queue.finish(dashboard.engine, job_id, "test-worker", dashboard.newer.run_id)
    else:
        queue.mark_cancelled(dashboard.engine, job_id, "test-worker")
    done = visible_text(client.get(f"/jobs/{job_id}", headers=HX).text)
    assert "0 / 4" not in done and "cancelling" not in done
    assert ("probe pass" in done) == (ending == "mark_cancelled")  # the stage a stopped job stopped in
    home_row = re.search(
        rf'<tr[^>]*>\s*<td class="num mono"><a href="/jobs/{job_id}">.*?</tr>', client.get("/").text, re.S
    )
    assert home_row is not None and "0/4" not in home_row.group(0)


def test_cancel_from_the_job_page(client: TestClient, dashboard: Dashboard) -> None:
    with write_session(dashboard.engine) as session:
        job_id = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": "cifar100"}).id
    response = client.post(f"/jobs/{job_id}/cancel", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{job_id}"
    assert "cancelled" in client.get(f"/jobs/{job_id}").text


def test_upload_page_lists_architecture_layers(client: TestClient) -> None:
    html = client.get("/upload").text
    assert '<option value="tinynet" data-layers-url="/api/v1/architectures/tinynet/layers" selected>' in html
    assert 'name="layers" value="conv"' in html and 'enctype="multipart/form-data"' in html


def test_bad_upload_rerenders_the_form_with_the_problem(client: TestClient, dashboard: Dashboard) -> None:
    buffer = io.BytesIO()
    torch.save(TinyNet(width=5).state_dict(), buffer)
    jobs_before = count_jobs(dashboard)
    response = client.post(
        "/upload",
        data={"architecture": "tinynet", "layers": ["fc"], "probe": "cifar100", "concepts": "imagenet"},
        files={"checkpoint": ("wide.pt", buffer.getvalue())},
    )
    assert response.status_code == 422
    assert "Not queued." in response.text and "does not fit tinynet" in response.text
    assert 'name="layers" value="fc" checked' in response.text and 'value="imagenet"' in response.text
    assert count_jobs(dashboard) == jobs_before
    junk = client.post("/upload", data={"architecture": "tinynet"}, files={"checkpoint": ("x.pt", b"junk")})
    assert junk.status_code == 400 and "weights_only=True" in junk.text and "Pick at least one layer" in junk.text


def test_good_upload_redirects_to_its_job_page(client: TestClient) -> None:
    buffer = io.BytesIO()
    torch.save(TinyNet().state_dict(), buffer)
    response = client.post(
        "/upload",
        data={"architecture": "tinynet", "layers": ["conv"]},
        files={"checkpoint": ("tiny.pt", buffer.getvalue())},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/jobs/")
    assert "queued" in client.get(response.headers["location"]).text


def test_static_assets_are_local(client: TestClient) -> None:
    htmx = client.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    assert client.get("/static/app.css").status_code == 200
    html = client.get("/").text
    assert "//cdn" not in html and "https://" not in html


def test_a_run_without_layers_still_renders(client: TestClient, dashboard: Dashboard) -> None:
    empty = seed_run(dashboard.engine, dashboard.settings, model_name="emptynet", layers=())
    html = client.get(f"/runs/{empty.run_id}").text
    assert "emptynet" in html


def test_cards_of_layers_with_the_same_units_stay_apart(client: TestClient, dashboard: Dashboard) -> None:
    """Cards are rendered once per neuron and replayed: unit 3 of conv1, of fc and of the older run's conv1
    each keep their own links (a card cache keyed by unit alone would mix them up)."""
    pages = {
        (run.run_id, layer): client.get(f"/runs/{run.run_id}/layers/{layer}", params={"sort": "-score"}).text
        for run in (dashboard.newer, dashboard.older)
        for layer in ("conv1", "fc")
    }
    for (run_id, layer), html in pages.items():
        links = set(re.findall(r'href="(/runs/\d+/layers/[^"/]+)/neurons/\d+"', html))
        assert links == {f"/runs/{run_id}/layers/{layer}"}


def test_unusual_digits_in_the_filter_are_label_text(client: TestClient, dashboard: Dashboard) -> None:
    response = client.get(layer_path(dashboard), params={"q": "²"})
    assert response.status_code == 200 and "No neuron label matches" in response.text


def test_every_page_links_a_favicon_that_is_served(client: TestClient, dashboard: Dashboard) -> None:
    for path in ("/", f"/runs/{dashboard.newer.run_id}", layer_path(dashboard)):
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in client.get(path).text
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")


@pytest.mark.parametrize("unit", [0, 95, 96, 705, 2047])
def test_the_breadcrumb_goes_back_to_the_grid_page_holding_the_unit(
    client: TestClient, dashboard: Dashboard, unit: int
) -> None:
    page = client.get(f"{layer_path(dashboard)}/neurons/{unit}").text
    crumb = re.search(r'<a class="mono" href="([^"]+)">blocks\.3</a>', page)
    assert crumb is not None
    url = crumb.group(1).replace("&amp;", "&")
    assert url.endswith(f"#unit-{unit}") and (("page=" in url) == (unit >= 96))
    assert unit in card_units(client.get(url.split("#")[0]).text)
