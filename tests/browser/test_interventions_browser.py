"""Interventions (#23) in headless Chromium over seeded data: the neuron page's "Test this neuron" panel (results for
everyone, buttons for editors), a result page with its class bars and downstream units (light, dark, 390 px), an
ablation asked from the panel whose page updates itself once the result is stored, and the layer and run pages'
sweep panels. The worker's part is covered by tests/integration/test_interventions.py; results here are seeded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from app.persistence.db import write_session
from app.persistence.models import Intervention, JobState, UnitSweep, utcnow
from tests.browser.conftest import SCREENSHOTS, LiveServer, start_server
from tests.browser.test_dashboard_browser import wait_for
from tests.support.dashboard_seed import build_dashboard

pytestmark = pytest.mark.browser
LAYER, UNIT = "blocks.3", 7
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def seeded_result(unit: int) -> dict[str, Any]:
    """Return an intervention result as the worker stores it (classes most hurt first)."""
    deltas = [-2.4, -1.1, -0.6, -0.2, -0.05, 0.01, 0.1, 0.3, 0.8, 1.5]
    order = [3, 5, 2, 4, 0, 1, 6, 8, 9, 7]
    return {
        "n_images": 64,
        "image_indices": list(range(64)),
        "classes": [
            {
                "class_index": index,
                "class_name": CLASSES[index],
                "mean_delta_logit": delta,
                "mean_delta_probability": delta / 10,
            }
            for index, delta in zip(order, deltas, strict=True)
        ],
        "predictions_changed": 0.1875,
        "accuracy_before": 0.62,
        "accuracy_after": 0.55,
        "downstream": [
            {"layer": "fc", "unit": 3, "label": "cat", "mean_delta_activation": -0.84},
            {"layer": "fc", "unit": 5, "label": "dog", "mean_delta_activation": -0.31},
        ],
        "label_effect_agreement": {
            "cosine": 0.41,
            "z": 3.2,
            "p_value": 0.004,
            "n_random": 1000,
            "top_classes": [3, 5, 2, 4, 0],
        },
        "seconds": 1.8,
        "plain_pass_seconds": None,
        "label": "cat",
        "device": "cpu",
    }


def store_result(server: LiveServer, intervention_id: int, unit: int) -> None:
    """Store a result for an intervention as its job would (the row succeeded)."""
    with write_session(server.dashboard.engine) as session:
        row = session.get(Intervention, intervention_id)
        row.result, row.status, row.finished_at = seeded_result(unit), JobState.SUCCEEDED.value, utcnow()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over seeded runs with one finished ablation of the newer run's blocks.3 unit 7 and a sweep."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("interventions-browser") / "data")
    run_id = dashboard.newer.run_id
    with write_session(dashboard.engine) as session:
        row = Intervention(
            run_id=run_id, layer=LAYER, units=[UNIT], mode="zero", factor=None, params_sha256="0" * 64,
            status=JobState.SUCCEEDED.value, result=seeded_result(UNIT), finished_at=utcnow(),
        )  # fmt: skip
        session.add(row)
        for unit in range(40):
            z = 4.0 - unit * 0.2
            session.add(
                UnitSweep(
                    run_id=run_id, layer=LAYER, unit=unit, label=f"label {unit}", label_effect_cosine=0.2 + z / 20,
                    label_effect_z=z, label_effect_p=0.001 if z > 2 else 0.4, top_classes=[3, 5, 2, 4, 0],
                    predictions_changed=0.05, n_images=64, sweep_seconds=0.12,
                )
            )  # fmt: skip
    live = start_server(dashboard)
    yield live
    live.stop()
    dashboard.engine.dispose()


@pytest.fixture(scope="module")
def driver(new_browser: Callable[[], Any]) -> Any:
    """A fresh Chromium for these flows (anonymous until a test logs it in)."""
    return new_browser()


def _emulate(driver: Any, *, dark: bool, width: int | None = None) -> None:
    features = [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})
    if width is None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(1440, 1000)
    else:
        metrics = {"width": width, "height": 844, "deviceScaleFactor": 2, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.set_window_size(width, 1000)


def _shoot(driver: Any, url: str, name: str, ready: str) -> None:
    """Open `url` in light, dark and at 390 px (no sideways scrolling), wait for `ready`, save the screenshots."""
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(exist_ok=True)
    for suffix, dark, width in (("light", False, None), ("dark", True, None), ("phone", False, 390)):
        _emulate(driver, dark=dark, width=width)
        driver.get(url)
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ready), message=ready)
        if width is None:
            height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 3000)")
            driver.set_window_size(1440, max(900, int(height)))
        else:
            assert driver.execute_script("return document.documentElement.scrollWidth") <= width, name
        driver.save_screenshot(str(SCREENSHOTS / f"{name}_{suffix}.png"))
    _emulate(driver, dark=False)


def test_anonymous_visitors_see_results_and_no_buttons(driver: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    run_id = server.dashboard.newer.run_id
    url = f"{server.url}/runs/{run_id}/layers/{LAYER}/neurons/{UNIT}"
    _shoot(driver, url, "intervention_panel_anonymous", "#intervention-list")
    panel = driver.find_element(By.ID, "test-neuron")
    assert "hurts cat" in panel.text and "z 3.2" in panel.text
    assert not driver.find_elements(By.ID, "ablate") and not driver.find_elements(By.ID, "amplify")


def test_the_result_page_charts_classes_and_links_downstream_units(driver: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    with write_session(server.dashboard.engine) as session:
        intervention_id = session.scalar(select(func.min(Intervention.id)))  # the seeded one
    _shoot(driver, f"{server.url}/interventions/{intervention_id}", "intervention_result", "#classes-hurt")
    hurt = driver.find_elements(By.CSS_SELECTOR, "#classes-hurt li")
    assert hurt[0].text.startswith("cat") and len(hurt) == 5
    helped = driver.find_elements(By.CSS_SELECTOR, "#classes-helped li")
    assert helped[0].text.startswith("horse")
    assert "62.0% → 55.0%" in driver.find_element(By.ID, "accuracy").text
    assert "p 0.004" in driver.find_element(By.ID, "agreement").text
    link = driver.find_element(By.CSS_SELECTOR, "#downstream a")
    assert link.get_attribute("href").endswith(f"/runs/{server.dashboard.newer.run_id}/layers/fc/neurons/3")


def test_an_editor_ablates_from_the_panel_and_the_page_updates_when_it_is_done(driver: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    run_id = server.dashboard.newer.run_id
    neuron = f"/runs/{run_id}/layers/{LAYER}/neurons/{UNIT + 1}"
    driver.get(server.login_link(neuron))
    wait_for(lambda: driver.find_elements(By.ID, "ablate"), message="the ablate button")
    _shoot(driver, server.url + neuron, "intervention_panel_editor", "#ablate")
    driver.get(server.url + neuron)
    button = wait_for(lambda: driver.find_elements(By.ID, "ablate"), message="the ablate button")
    assert driver.find_elements(By.ID, "set-mean") and driver.find_elements(By.ID, "amplify-factor")
    button[0].click()
    wait_for(lambda: "/interventions/" in driver.current_url, message="the result page")
    result = driver.find_element(By.ID, "intervention-result")
    assert result.get_attribute("data-status") == "queued"
    _emulate(driver, dark=True)
    driver.save_screenshot(str(SCREENSHOTS / "intervention_queued_dark.png"))
    _emulate(driver, dark=False)
    store_result(server, int(driver.current_url.rsplit("/", 1)[1]), UNIT + 1)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#classes-hurt li"), message="the polled result")


def test_the_layer_and_run_pages_show_the_sweep(driver: Any, server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    run_id = server.dashboard.newer.run_id
    _shoot(driver, f"{server.url}/runs/{run_id}/layers/{LAYER}", "layer_sweep", "#sweep-table")
    first = driver.find_element(By.CSS_SELECTOR, "#sweep-table tbody tr td a")
    assert first.text == "0"  # highest z first
    Select(driver.find_element(By.ID, "sweep-sort")).select_by_value("z")
    wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#sweep-table tbody tr td a").text == "39", message="re-sorted"
    )
    _shoot(driver, f"{server.url}/runs/{run_id}", "run_sweeps", "#run-sweeps .z-histogram")
    assert "40 of 2048 units swept" in driver.find_element(By.ID, "run-sweeps").text
