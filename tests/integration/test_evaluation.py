"""Evaluations wherever a label shows, through the real app on a real SQLite file: stored with a run, carried by the
JSON API, sorted and filtered by, shown on cards, neuron and run pages; old runs (no evaluation) keep working."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.persistence.db import create_db_engine, downgrade_database, head_revision, upgrade_database, write_session
from app.persistence.models import Layer, Neuron
from app.persistence.store import store_run
from app.web.main import create_app
from dissect_core.analysis.label_free import BASELINE_SETS, layer_label_free_scores, random_baseline
from dissect_core.neuron_rows import GRADE_FIELDS, NEURON_ROW_COLUMNS
from dissect_core.results import EVALUATION_FIELDS
from dissect_core.saved import write_result_files
from tests.support.dashboard_seed import (
    N_FOLDS,
    NULL_SD,
    RELIABLE_MIN_R,
    SIGNIFICANT_MIN_R,
    TOP_K,
    Dashboard,
    LayerSpec,
    SeededRun,
    add_coverage_artifacts,
    fake_encoder_loader,
    image_embeddings,
    seed_run,
    seeded_r,
    tiny_catalog,
    top_indices,
)
from tests.support.fakes import fake_result, make_images

EVALUATED_LAYERS = (LayerSpec("conv1", "conv", 64), LayerSpec("fc", "linear", 10))
CONV1 = 0  # the position of conv1 in EVALUATED_LAYERS, which `seeded_r` takes
HX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def evaluated(dashboard: Dashboard) -> SeededRun:
    """A run of `evalnet` whose layers and neurons have evaluations, beside the dashboard's older runs without."""
    return seed_run(dashboard.engine, dashboard.settings, model_name="evalnet", layers=EVALUATED_LAYERS, evaluated=True)


def reliable_units(n_units: int = 64) -> list[int]:
    return [unit for unit in range(n_units) if seeded_r(CONV1, unit) >= RELIABLE_MIN_R]


def unreliable_units(n_units: int = 64) -> list[int]:
    return [unit for unit in range(n_units) if seeded_r(CONV1, unit) < RELIABLE_MIN_R]


def weak_units(n_units: int = 64) -> list[int]:
    return [unit for unit in unreliable_units(n_units) if seeded_r(CONV1, unit) >= SIGNIFICANT_MIN_R]


def unlabelled_units(n_units: int = 64) -> list[int]:
    return [unit for unit in unreliable_units(n_units) if seeded_r(CONV1, unit) < SIGNIFICANT_MIN_R]


def neurons_url(run_id: int, layer: str = "conv1") -> str:
    return f"/api/v1/runs/{run_id}/layers/{layer}/neurons"


def card(html: str, unit: int) -> str:
    """Return the HTML of one grid card."""
    start = html.index(f'id="unit-{unit}"')
    return html[html.rindex("<a ", 0, start) : html.index("</a>", start)]


# --- the JSON API ------------------------------------------------------------------------------------------------


def test_neuron_lists_carry_the_evaluation_and_old_runs_nulls(
    client: TestClient, dashboard: Dashboard, evaluated: SeededRun
) -> None:
    page = client.get(neurons_url(evaluated.run_id), params={"limit": 64}).json()
    first_reliable, first_unreliable = reliable_units()[0], unreliable_units()[0]
    good, bad = page["items"][first_reliable], page["items"][first_unreliable]
    assert good["explained_r"] == pytest.approx(seeded_r(CONV1, first_reliable)) and good["reliable"] is True
    assert bad["reliable"] is False and bad["p_value"] > 0.01
    assert [term["weight"] for term in good["explanation"]] == [0.8, 0.3, 0.1]
    assert good["explanation"][0]["concept"] == good["label"] and good["stability"] == 4 / N_FOLDS
    assert good["explanation_r"] > good["explained_r"] and good["ground_truth_r"] is None
    assert page["layer_evaluation"]["null_sd"] == pytest.approx(NULL_SD)
    assert (
        good["verdict"] == "explains" and bad["verdict"] in ("weak", "no label") and len(good["verdict_reasons"]) == 4
    )
    assert good["coverage_source"] == "encoder" and good["coverage_judgeable"] is True and good["clarity"] is not None
    layer_evaluation = page["layer_evaluation"]
    assert layer_evaluation["reliable_min_r"] >= SIGNIFICANT_MIN_R  # the smallest significant r
    # The layer's old fields count significance, not the grade: the names that say so carry the same values.
    assert layer_evaluation["significant_min_r"] == layer_evaluation["reliable_min_r"]
    significant = sum(item["p_value"] is not None and item["verdict"] != "no label" for item in page["items"])
    assert (
        layer_evaluation["share_significant"]
        == layer_evaluation["share_reliable"]
        == pytest.approx(significant / len(page["items"]))
    )

    old = client.get(neurons_url(dashboard.newer.run_id)).json()
    assert old["layer_evaluation"] is None
    assert all(old["items"][0][field] is None for field in (*EVALUATION_FIELDS, *GRADE_FIELDS))


def test_neuron_detail_and_layers_carry_the_evaluation(client: TestClient, evaluated: SeededRun) -> None:
    unit = reliable_units()[0]
    neuron = client.get(f"/api/v1/runs/{evaluated.run_id}/layers/conv1/neurons/{unit}").json()
    assert neuron["reliable"] is True and neuron["explained_r"] == pytest.approx(seeded_r(CONV1, unit))
    assert neuron["layer_evaluation"]["n_folds"] == N_FOLDS and len(neuron["explanation"]) == 3
    fc = client.get(f"/api/v1/runs/{evaluated.run_id}/layers/fc/neurons/2").json()
    assert fc["ground_truth_r"] == pytest.approx(round(seeded_r(1, 2) - 0.03, 4))
    layers = client.get(f"/api/v1/runs/{evaluated.run_id}/layers").json()["items"]
    assert [layer["evaluation"]["simulation"] for layer in layers] == ["cosine", "cosine"]


@pytest.mark.parametrize(("sort", "descending"), [("-r", True), ("r", False)])
def test_neurons_sort_by_r(client: TestClient, evaluated: SeededRun, sort: str, descending: bool) -> None:
    neurons = client.get(neurons_url(evaluated.run_id), params={"sort": sort, "limit": 64}).json()["items"]
    rs = [neuron["explained_r"] for neuron in neurons]
    assert rs == sorted(rs, reverse=descending) and rs[0] != rs[-1]


def test_sorting_an_old_layer_by_r_keeps_unit_order(client: TestClient, dashboard: Dashboard) -> None:
    neurons = client.get(neurons_url(dashboard.newer.run_id), params={"sort": "-r", "limit": 64}).json()["items"]
    assert [neuron["unit"] for neuron in neurons] == list(range(64))


def test_neurons_filter_reliable_only(client: TestClient, dashboard: Dashboard, evaluated: SeededRun) -> None:
    page = client.get(neurons_url(evaluated.run_id), params={"reliable": "true", "limit": 64}).json()
    assert page["reliable"] is True and page["total"] == len(reliable_units())
    assert [neuron["unit"] for neuron in page["items"]] == reliable_units()
    striped = client.get(neurons_url(evaluated.run_id), params={"reliable": "true", "q": "striped"}).json()
    assert {neuron["label"] for neuron in striped["items"]} == {"striped"}
    assert all(neuron["reliable"] for neuron in striped["items"])
    assert client.get(neurons_url(dashboard.newer.run_id), params={"reliable": "true"}).json()["total"] == 0


# --- the layer grid --------------------------------------------------------------------------------------------


def test_a_card_below_the_top_grade_is_muted_with_its_grade_r_p_and_reasons(
    client: TestClient, evaluated: SeededRun
) -> None:
    html = client.get(f"/runs/{evaluated.run_id}/layers/conv1").text
    unit = unlabelled_units()[0]
    muted = card(html, unit)
    assert 'class="card evaluated unreliable"' in muted
    assert (
        '<span class="label">no label</span>' in muted and '<span class="grade grade-no-label">no label</span>' in muted
    )
    assert f"r {seeded_r(CONV1, unit):.2f}" in muted and "p 0." in muted
    label = re.search(r'<span class="guess">([^<]+)</span>', muted)
    assert label is not None and "not significant at 5% FDR" in muted and f"“{label.group(1)}”" in muted

    weak = card(html, weak_units()[0])
    assert 'class="card evaluated unreliable"' in weak and '<span class="grade grade-weak">weak</span>' in weak
    assert "below the floor r 0.25" in weak and "chosen by 2 of 5 folds" in weak and "guess" not in weak

    good = card(html, reliable_units()[0])
    assert 'class="card evaluated"' in good and "no label" not in good
    assert f"r {seeded_r(CONV1, reliable_units()[0]):.2f}" in good
    assert '<span class="grade grade-explains">explains</span>' in good and "chosen by 4 of 5 folds" in good


def test_an_evaluated_layer_sorts_by_r_and_filters_reliable_labels(client: TestClient, evaluated: SeededRun) -> None:
    path = f"/runs/{evaluated.run_id}/layers/conv1"
    html = client.get(path, params={"sort": "-r"}).text
    assert '<option value="-r" selected>' in html and 'id="grid-reliable"' in html
    best = max(range(64), key=lambda unit: seeded_r(CONV1, unit))
    assert re.findall(r'id="unit-(\d+)"', html)[0] == str(best)
    assert "out-of-fold correlation" in html and "bottom quartile" not in html

    reliable = client.get(path, params={"reliable": "true", "sort": "-r"}).text
    assert 'name="reliable" value="true" checked' in reliable
    assert (
        'grade-no-label">no label</span>' not in reliable.split('id="grid"')[1]
        and f'of <span class="mono">{len(reliable_units())}</span>' in reliable
    )
    assert "top-grade neurons" in reliable

    weak = client.get(path, params={"verdict": "weak"}).text
    assert '<option value="weak" selected>' in weak and f'of <span class="mono">{len(weak_units())}</span>' in weak
    assert [int(unit) for unit in re.findall(r'id="unit-(\d+)"', weak)] == weak_units()


def test_an_old_layer_looks_as_before(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(f"/runs/{dashboard.newer.run_id}/layers/conv1").text
    assert 'class="card evaluated' not in html and "grade-" not in html.split('id="grid"')[1]
    assert '<option value="-r"' not in html and 'id="grid-reliable"' not in html
    assert "bottom quartile" in html


# --- the neuron page -------------------------------------------------------------------------------------------


def test_the_neuron_page_shows_the_explanation_stability_significance_and_null(
    client: TestClient, evaluated: SeededRun
) -> None:
    unit = reliable_units()[0]
    html = client.get(f"/runs/{evaluated.run_id}/layers/conv1/neurons/{unit}").text
    r = seeded_r(CONV1, unit)
    assert 'id="evaluation"' in html and 'id="explanation"' in html
    assert re.search(rf'id="label-row">.*?<td class="num mono">{r:.2f}</td>', html)
    assert re.search(rf'id="explanation-row"><td>3 weighted concepts.*?{min(0.95, r + 0.12):.2f}', html)
    assert "4 of 5 folds chose this label" in html and '<span class="grade grade-explains">explains</span>' in html
    assert 'id="verdict-reasons"' in html and "<li>significant at 5% FDR</li>" in html
    assert "0.8</td>" in html and "0.3</td>" in html and "0.1</td>" in html
    assert '<svg class="chart null-chart"' in html and f">r {r:.2f}</text>" in html
    assert "significant ≥" in html and 'id="ground-truth-row"' not in html
    assert re.search(r"<h1>[^<]+</h1>", html) and '<h1 class="low-text">no label</h1>' not in html
    assert re.search(r'id="label-r">.*?class="grade grade-explains" href="#verdict" title="r 0\.\d\d explains', html)


def test_a_neuron_without_a_label_is_headed_no_label(client: TestClient, evaluated: SeededRun) -> None:
    unit = unlabelled_units()[0]
    html = client.get(f"/runs/{evaluated.run_id}/layers/conv1/neurons/{unit}").text
    assert '<h1 class="low-text">no label</h1>' in html and 'grade grade-no-label" href="#verdict"' in html
    assert "2 of 5 folds chose this label" in html and "<li>not significant at 5% FDR (p 0." in html


def test_a_weak_neuron_keeps_its_label_with_the_weak_grade_and_why(client: TestClient, evaluated: SeededRun) -> None:
    unit = weak_units()[0]
    html = client.get(f"/runs/{evaluated.run_id}/layers/conv1/neurons/{unit}").text
    assert re.search(r"<h1>[^<]+</h1>", html) and 'grade grade-weak" href="#verdict"' in html
    assert "below the floor r 0.25</li>" in html and "the top grade needs 3 of 5)</li>" in html


def test_a_classifier_neuron_shows_its_ground_truth_r(client: TestClient, evaluated: SeededRun) -> None:
    html = client.get(f"/runs/{evaluated.run_id}/layers/fc/neurons/2").text
    assert 'id="ground-truth-row"' in html and f"{seeded_r(1, 2) - 0.03:.2f}</td>" in html


@pytest.fixture(scope="module")
def ungraded(dashboard: Dashboard) -> SeededRun:
    """An evaluated run stored before verdicts (0011): no grade columns, `reliable` the significance decision."""
    seeded = seed_run(
        dashboard.engine, dashboard.settings, model_name="ungradednet", layers=EVALUATED_LAYERS[:1], evaluated=True
    )
    layers = select(Layer.id).where(Layer.run_id == seeded.run_id)
    with write_session(dashboard.engine) as session:
        session.execute(
            update(Neuron)
            .where(Neuron.layer_id.in_(layers))
            .values({**dict.fromkeys(GRADE_FIELDS), "reliable": Neuron.explained_r >= SIGNIFICANT_MIN_R})
        )
    return seeded


def test_a_neuron_evaluated_before_verdicts_says_not_graded(client: TestClient, ungraded: SeededRun) -> None:
    html = client.get(f"/runs/{ungraded.run_id}/layers/conv1").text
    significant = card(html, weak_units()[0])
    assert '<span class="grade grade-not-graded">not graded</span>' in significant and "Not graded" in significant
    grid = html.split('id="grid"')[1]
    assert "grade-explains" not in grid and "grade-weak" not in grid and "grade-no-label" not in grid
    page = client.get(f"/runs/{ungraded.run_id}/layers/conv1/neurons/{weak_units()[0]}").text
    assert 'grade grade-not-graded" href="#verdict"' in page and "stored before verdicts" in page
    overview = client.get(f"/runs/{ungraded.run_id}").text
    assert "not graded" in overview and "significant" in overview


def test_an_old_neuron_page_has_no_evaluation(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(f"/runs/{dashboard.newer.run_id}/layers/conv1/neurons/3").text
    assert re.search(r"<h1[^>]*>striped</h1>", html) and 'id="evaluation"' not in html and "null-chart" not in html


def test_a_typed_concept_the_encoder_cannot_place_gets_a_warning_not_a_bare_ranking(
    client: TestClient, evaluated: SeededRun
) -> None:
    add_coverage_artifacts(evaluated)
    url = f"/api/v1/runs/{evaluated.run_id}/layers/conv1/concepts"
    blind = client.get(url, params={"q": "purple"}).json()
    assert blind["encoder_blind"] is True and "The encoder does not recognise 'purple'" in blind["warning"]
    lacking = client.get(url, params={"q": "theatre curtain"}).json()
    seen = client.get(url, params={"q": "striped"}).json()
    assert lacking["encoder_blind"] is False and lacking["warning"] is None and seen["warning"] is None
    page = f"/runs/{evaluated.run_id}/layers/conv1/concepts"
    fragment = client.get(page, params={"q": "purple"}, headers=HX).text
    assert 'id="concept-warning"' in fragment and '<details class="blind-ranking">' in fragment
    assert 'id="concept-warning"' not in client.get(page, params={"q": "striped"}, headers=HX).text
    search = f"/runs/{evaluated.run_id}/search"
    blind_search = client.get(search, params={"q": "purple"}).text
    assert "The encoder does not recognise &#39;purple&#39;" in blind_search
    assert '<details class="blind-ranking">' in blind_search and 'id="ranking-table"' in blind_search
    assert '<details class="blind-ranking">' not in client.get(search, params={"q": "striped"}).text


# --- the run page ----------------------------------------------------------------------------------------------


def test_the_run_page_overviews_each_layers_labels(client: TestClient, evaluated: SeededRun) -> None:
    html = client.get(f"/runs/{evaluated.run_id}").text
    table = html[html.index('id="layer-overview"') : html.index("</table>", html.index('id="layer-overview"'))]
    rows = table.split("<tr>")[2:]  # after the header row
    assert len(rows) == 2 and all('<svg class="chart r-histogram"' in row for row in rows)
    conv_rs = [seeded_r(CONV1, unit) for unit in range(64)]
    cells = re.findall(r'<td class="num mono">([^<]+)</td>', rows[0])
    mean_r, mean_explanation_r, share_generic = cells[1:]
    assert mean_r == f"{sum(conv_rs) / 64:.2f}"
    assert mean_explanation_r == f"{sum(round(min(0.95, r + 0.12), 4) for r in conv_rs) / 64:.2f}"
    grades = re.findall(r'<span class="grade grade-[a-z-]+">(\d+)</span>', rows[0])
    assert grades == [str(len(reliable_units())), str(len(weak_units())), str(len(unlabelled_units()))]
    # The seed's weak labels are covered but chosen by 2 of 5 folds: all miss the stability rule, none the others.
    assert f"weak: 0&nbsp;uncovered · {len(weak_units())}&nbsp;unstable · 0&nbsp;floor</span>" in rows[0]
    assert share_generic == f"{100 * 6 / 64:.0f}%"
    assert re.findall(r'<td class="num mono">([^<]+)</td>', rows[1])[-1] == "10%"  # fc: unit 9 is "photo"


def test_the_runs_api_answer_carries_each_layers_grades_and_weak_causes(
    client: TestClient, evaluated: SeededRun
) -> None:
    overview = client.get(f"/api/v1/runs/{evaluated.run_id}").json()["overview"]
    assert [layer["name"] for layer in overview] == ["conv1", "fc"]
    conv1 = overview[0]
    counts = {"explains": len(reliable_units()), "weak": len(weak_units()), "no label": len(unlabelled_units())}
    assert conv1["verdict_counts"] == counts and conv1["share_reliable"] == pytest.approx(len(reliable_units()) / 64)
    assert conv1["weak_causes"] == {"uncovered": 0, "unstable": len(weak_units()), "floor only": 0}
    assert conv1["evaluation"]["share_significant"] == pytest.approx((counts["explains"] + counts["weak"]) / 64)


def test_the_run_page_sets_each_layers_label_free_scores_against_random_image_sets(
    client: TestClient, evaluated: SeededRun
) -> None:
    html = client.get(f"/runs/{evaluated.run_id}").text
    chance = random_baseline(image_embeddings(), TOP_K)
    clarity = layer_label_free_scores(image_embeddings(), top_indices(64)).clarity.mean()
    baseline = f"{chance.clarity.mean():.2f} · {chance.polysemanticity.mean():.2f}"
    cells = re.findall(r'<td class="num mono small label-free">(.*?)</td>', html)
    assert len(cells) == 2 and cells[0].startswith(f"{clarity:.2f} · ")
    sets = f"{BASELINE_SETS} random sets of {TOP_K} probe images"
    assert all(f'title="Mean clarity and polysemanticity of {sets}">{baseline}</span>' in cell for cell in cells)
    assert clarity > chance.clarity.mean() + 0.2  # the seeded units' top images share a direction


def test_an_old_run_page_shows_its_layers_and_generic_share_only(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(f"/runs/{dashboard.newer.run_id}").text
    assert 'id="layer-overview"' in html and "r-histogram" not in html and "mean r" not in html
    assert "generic</th>" in html and "2,048" in html


# --- storing, exporting and migrating --------------------------------------------------------------------------


def test_a_stored_run_keeps_every_evaluation_and_old_results_store_nulls(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    images = make_images(tmp_path / "probe", 8)
    result = fake_result(images, evaluated=True)
    run_id = store_run(engine, settings, result)
    old_run_id = store_run(engine, settings, fake_result(images, seed=1))
    with Session(engine) as session:
        layers = session.scalars(select(Layer).where(Layer.run_id == run_id).order_by(Layer.position)).all()
        for layer_row, layer in zip(layers, result.layers, strict=True):
            assert layer.evaluation is not None
            assert layer_row.evaluation is not None
            assert layer_row.evaluation["reliable_min_r"] == pytest.approx(layer.evaluation.reliable_min_r)
            rows = session.scalars(select(Neuron).where(Neuron.layer_id == layer_row.id).order_by(Neuron.unit))
            for row, neuron in zip(rows, layer.neurons, strict=True):
                assert neuron.evaluation is not None
                assert row.explained_r == pytest.approx(neuron.evaluation.explained_r)
                assert neuron.verdict is not None and row.verdict == neuron.verdict.verdict
                assert row.reliable is neuron.verdict.reliable and row.stability == neuron.evaluation.stability
                assert row.verdict_reasons == list(neuron.verdict.reasons) and row.clarity == pytest.approx(
                    neuron.clarity
                )
                assert row.explanation == [
                    {"concept": term.concept, "weight": pytest.approx(term.weight)}
                    for term in neuron.evaluation.explanation
                ]
                assert (row.ground_truth_r is None) == (neuron.evaluation.ground_truth_r is None)
        old_layers = select(Layer.id).where(Layer.run_id == old_run_id)
        old = session.scalars(select(Neuron).where(Neuron.layer_id.in_(old_layers))).all()
        assert old and all(getattr(row, field) is None for row in old for field in (*EVALUATION_FIELDS, "verdict"))
        # SQL NULLs, not JSON nulls: queries for unevaluated rows find them.
        assert session.scalar(select(Layer.id).where(Layer.run_id == old_run_id, Layer.evaluation.is_(None)))
        unexplained = select(Neuron.id).where(Neuron.layer_id.in_(old_layers), Neuron.explanation.is_(None))
        assert len(session.scalars(unexplained).all()) == len(old)


def test_results_csv_has_the_evaluation_columns(tmp_path: Path) -> None:
    images = make_images(tmp_path / "probe", 6)
    write_result_files(fake_result(images, evaluated=True), tmp_path / "evaluated")
    rows = list(csv.DictReader((tmp_path / "evaluated" / "results.csv").read_text().splitlines()))
    assert tuple(rows[0]) == NEURON_ROW_COLUMNS
    assert NEURON_ROW_COLUMNS[-len(EVALUATION_FIELDS) - len(GRADE_FIELDS) :] == (*EVALUATION_FIELDS, *GRADE_FIELDS)
    assert {row["verdict"] for row in rows} == {"explains", "no label"}
    assert {row["reliable"] for row in rows} == {"True", "False"}
    first = rows[0]
    explanation = json.loads(first["explanation"])
    assert explanation[0] == {"concept": first["label"], "weight": 0.9} and float(first["explained_r"]) >= 0.3
    assert {row["ground_truth_r"] == "" for row in rows if row["layer"] == "layer1"} == {True}
    assert all(row["ground_truth_r"] != "" for row in rows if row["layer"] == "fc")

    write_result_files(fake_result(images), tmp_path / "old")
    old = list(csv.DictReader((tmp_path / "old" / "results.csv").read_text().splitlines()))
    assert all(row[field] == "" for row in old for field in EVALUATION_FIELDS) and json.loads(old[0]["runners_up"])


def test_upgrading_a_database_with_an_old_run_keeps_it_readable(tmp_path: Path, database_url: str) -> None:
    settings = Settings.for_data_dir(tmp_path / "data", database_url=database_url, allowed_hosts=("testserver",))
    settings.ensure_dirs()
    upgrade_database(settings)
    engine = create_db_engine(database_url)
    try:
        seeded = seed_run(engine, settings, layers=(LayerSpec("conv1", "conv", 16),))
        assert downgrade_database(settings, "0005") == "0005"  # the schema before evaluations, with its old run
        assert upgrade_database(settings) == head_revision()
        app = create_app(settings, encoder_loader=fake_encoder_loader(), catalog=tiny_catalog())
        with TestClient(app) as client:
            neurons = client.get(neurons_url(seeded.run_id), params={"sort": "-r"}).json()["items"]
            assert [neuron["unit"] for neuron in neurons] == list(range(16))
            assert all(neuron[field] is None for neuron in neurons for field in EVALUATION_FIELDS)
            for path in ("", "/layers/conv1", "/layers/conv1/neurons/3"):
                response = client.get(f"/runs/{seeded.run_id}{path}")
                assert response.status_code == 200 and "grade-no-label" not in response.text
    finally:
        engine.dispose()
