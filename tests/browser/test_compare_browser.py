"""Comparing two runs in headless Chromium: the column headers and the sort box reorder the neurons, the page fits a
phone, and screenshots (light and dark) land in tests/browser/screenshots/."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import select, update

from app.persistence.db import write_session
from app.persistence.models import Layer, Neuron
from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.browser.test_dashboard_browser import wait_for
from tests.support.dashboard_seed import LayerSpec, seed_run

pytestmark = pytest.mark.browser
SCREENS = SCREENSHOTS
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
LAYERS = (LayerSpec("conv1", "conv", 64), LayerSpec("fc", "linear", 10))


@pytest.fixture(scope="module")
def pair(live_server: LiveServer) -> tuple[int, int]:
    """Two runs of `comparenet`; the second's labels differ on every third conv1 unit, its scores all shifted."""
    dashboard = live_server.dashboard
    first = seed_run(dashboard.engine, dashboard.settings, model_name="comparenet", layers=LAYERS).run_id
    second = seed_run(dashboard.engine, dashboard.settings, model_name="comparenet", layers=LAYERS[::-1]).run_id
    with write_session(dashboard.engine) as session:
        conv1 = session.scalars(select(Layer.id).where(Layer.run_id == second, Layer.name == "conv1")).one()
        session.execute(update(Neuron).where(Neuron.layer_id == conv1, Neuron.unit % 3 == 0).values(label="zebra"))
    return first, second


def save(driver: Any, name: str) -> None:
    """Save a full-page PNG of the current page to tests/browser/screenshots/NAME.png."""
    if not SCREENS.parent.is_dir():
        return
    SCREENS.mkdir(exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (SCREENS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def shown(driver: Any, css: str) -> Any:
    """Wait until the page has an element matching the CSS selector; return the first."""
    from selenium.webdriver.common.by import By

    return wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, css), message=css)[0]


def colour_scheme(driver: Any, scheme: str) -> None:
    """Emulate the system's light or dark setting."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )


def rows(driver: Any) -> list[tuple[int, float, bool]]:
    """Return the listed neurons as (unit, Δ score, label changed)."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, "#compare-neurons tbody tr")
    return [
        (
            int(row.get_attribute("data-unit")),
            float(row.get_attribute("data-delta")),
            "changed" in row.get_attribute("class"),
        )
        for row in found
    ]


def test_the_headers_and_the_sort_box_reorder_the_neurons(
    browser: Any, live_server: LiveServer, pair: tuple[int, int]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    first, second = pair
    browser.get(f"{live_server.url}/runs/{first}/compare?other={second}")
    shown(browser, "#compare-neurons")
    listed = rows(browser)
    assert len(listed) == 64
    changed = [row for row in listed if row[2]]
    assert len(changed) == 22 and listed[:22] == changed  # units 0, 3, …, 63: label changed first
    share = browser.find_element(By.CSS_SELECTOR, "#compare-layers tbody tr td[data-share]").text
    assert share.startswith("34%")

    browser.find_element(By.CSS_SELECTOR, 'th a[data-sort="-abs_delta"]').click()
    shown(browser, 'th[aria-sort="descending"]')
    magnitudes = [abs(delta) for _unit, delta, _changed in rows(browser)]
    assert magnitudes == sorted(magnitudes, reverse=True) and "sort=-abs_delta" in browser.current_url
    browser.find_element(By.CSS_SELECTOR, 'th a[data-sort="abs_delta"]').click()  # again: smallest first
    shown(browser, 'th[aria-sort="ascending"]')
    magnitudes = [abs(delta) for _unit, delta, _changed in rows(browser)]
    assert magnitudes == sorted(magnitudes)

    Select(browser.find_element(By.ID, "compare-sort")).select_by_value("unit")  # navigates on change
    shown(browser, 'th[aria-sort="ascending"] a[data-sort="-unit"]')
    assert [unit for unit, _delta, _changed in rows(browser)] == list(range(64))

    link = browser.find_element(By.CSS_SELECTOR, "#compare-neurons tbody tr td a")
    assert link.get_attribute("href").endswith(f"/runs/{first}/layers/conv1/neurons/0")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_compare_page_in_light_and_dark_and_on_a_phone(
    browser: Any, live_server: LiveServer, pair: tuple[int, int], scheme: str
) -> None:
    from selenium.webdriver.common.by import By

    first, second = pair
    colour_scheme(browser, scheme)
    try:
        browser.get(f"{live_server.url}/runs/{first}/compare?other={second}&limit=24")
        shown(browser, "#compare-neurons")
        save(browser, f"compare_{scheme}")
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        try:
            browser.get(f"{live_server.url}/runs/{first}/compare?other={second}&limit=24")
            shown(browser, "#compare-neurons")
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"the compare page scrolls sideways at 390 px ({width} px wide)"
            save(browser, f"compare_phone_{scheme}")
            browser.get(f"{live_server.url}/runs/{second}")
            shown(browser, "#compare-picker")
            assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"]
            save(browser, f"run_phone_{scheme}")
        finally:
            browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.get(f"{live_server.url}/runs/{second}")
        browser.find_element(By.CSS_SELECTOR, ".run-details summary").click()
        name = browser.find_element(By.ID, "run-name")
        name.clear()
        name.send_keys(f"relabelled conv1 ({scheme})")
        notes = browser.find_element(By.ID, "run-notes-field")
        notes.clear()
        notes.send_keys("every third conv1 unit is a zebra now")
        browser.find_element(By.CSS_SELECTOR, "#run-details-form button").click()
        assert shown(browser, "#run-title").text.startswith(f"relabelled conv1 ({scheme})")
        assert shown(browser, "#run-notes").text == "every third conv1 unit is a zebra now"
        browser.find_element(By.CSS_SELECTOR, ".run-details summary").click()
        save(browser, f"run_{scheme}")
    finally:
        colour_scheme(browser, "light")
