"""A neuron's distribution evidence in headless Chromium: the histogram SVG, the quantile bands' images and the
similar neurons, in light and dark and at phone width; screenshots land in tests/browser/screenshots/."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.support.dashboard_seed import SeededRun, seed_run
from tests.support.distribution_seed import DOUBLE_UNIT, RAMP_UNIT, write_seeded_activations

pytestmark = pytest.mark.browser

SHOTS = SCREENSHOTS
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


@pytest.fixture(scope="module")
def with_activations(live_server: LiveServer) -> SeededRun:
    """A run of `distnet` that keeps its layers' activations, beside the live server's runs without them."""
    dashboard = live_server.dashboard
    run = seed_run(dashboard.engine, dashboard.settings, model_name="distnet")
    write_seeded_activations(run)
    return run


def save(driver: Any, name: str) -> Path:
    """Save a full-page PNG of the current page (beyond the window, as Chromium lays it out)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = SHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def rgb(css_colour: str) -> tuple[int, ...]:
    return tuple(int(float(part)) for part in css_colour[css_colour.index("(") + 1 : -1].split(",")[:3])


def open_neuron_page(browser: Any, url: str) -> None:
    """Open a neuron page and wait until its distribution panels have loaded in place of their placeholder."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 15).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#distribution:not([hx-get])"),
        message=f"the distribution panels of {url}",
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_histogram_bands_and_similar_neurons_render(
    browser: Any, live_server: LiveServer, with_activations: SeededRun, scheme: str
) -> None:
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    try:
        open_neuron_page(browser, f"{live_server.url}/runs/{with_activations.run_id}/layers/conv1/neurons/{RAMP_UNIT}")
        chart = browser.find_element(By.CSS_SELECTOR, "svg.activation-histogram")
        assert chart.is_displayed() and chart.size["width"] > 400
        assert chart.get_attribute("aria-labelledby") == "activation-histogram-title"
        bars = browser.find_elements(By.CSS_SELECTOR, "svg.activation-histogram .bar-activation")
        assert len(bars) >= 20
        background = rgb(browser.execute_script("return getComputedStyle(document.body).backgroundColor"))
        assert rgb(bars[0].value_of_css_property("fill")) != background  # bars stand out in either scheme
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.activation-histogram .band-edge")) == 4
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.activation-histogram .top-mark")) >= 5
        bands = browser.find_elements(By.CSS_SELECTOR, "#distribution .band")
        assert len(bands) == 5 and bands[0].find_element(By.TAG_NAME, "h4").text.startswith("top 1%")
        images = browser.find_elements(By.CSS_SELECTOR, "#distribution .band-image img")
        assert len(images) == 1 + 4 + 6 * 3
        assert all(browser.execute_script("return arguments[0].complete", image) for image in images[:6])
        rows = browser.find_elements(By.CSS_SELECTOR, "#similar-in-layer tbody tr")
        assert len(rows) == 10 and rows[0].text.startswith(str(DOUBLE_UNIT))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#similar-other-layers tbody tr")) == 10
        save(browser, f"neuron_distribution_{scheme}")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_distribution_fits_a_phone_screen(browser: Any, live_server: LiveServer, with_activations: SeededRun) -> None:
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        open_neuron_page(browser, f"{live_server.url}/runs/{with_activations.run_id}/layers/conv1/neurons/{RAMP_UNIT}")
        chart = browser.find_element(By.CSS_SELECTOR, "svg.activation-histogram")
        assert 250 < chart.size["width"] <= 390
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        browser.execute_script("document.getElementById('distribution').scrollIntoView()")
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "neuron_distribution_phone.png"))
        assert overflow <= 1, f"the neuron page is {overflow} px wider than a 390 px screen"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_run_without_activations_shows_why(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    open_neuron_page(browser, f"{live_server.url}/runs/{live_server.dashboard.older.run_id}/layers/conv1/neurons/0")
    notice = browser.find_element(By.ID, "distribution-unavailable")
    assert "cannot be shown" in notice.text and "dissect the model again" in notice.text
