"""Every page at 390 px (a phone), light and dark: the page never scrolls sideways, each table scrolls inside its own
container with its trust columns (mean r, grades, generic) reachable there, the neuron page's concept box sits near
the top, and the header links "Runs" once. Screenshots land in tests/browser/screenshots/phone_*.png."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer, wait_for
from tests.support.dashboard_seed import LayerSpec, seed_run

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
LAYERS = (LayerSpec("conv1", "conv", 64), LayerSpec("fc", "linear", 10))
#: Column headers that say how far to trust a layer's labels: a phone must be able to reach each of them.
TRUST_HEADERS = ("mean r", "grades", "generic")
#: How far down a phone's page the neuron page's concept box may start (it sat at 5,755 px of 6,156).
CONCEPT_BOX_MAX_Y = 1200

#: Per table on the page: its scroll container's overflow-x and right edge, and each header's text, display and
#: right edge once scrolled into view inside that container.
TABLES_JS = """
const tables = [];
for (const table of document.querySelectorAll('main table')) {
  let box = table;
  const scrolls = (element) => ['auto', 'scroll'].includes(getComputedStyle(element).overflowX);
  while (box !== document.body && !scrolls(box)) box = box.parentElement;
  const headers = [];
  for (const th of table.querySelectorAll('thead th')) {
    box.scrollLeft = th.offsetLeft;
    const rect = th.getBoundingClientRect();
    const display = getComputedStyle(th).display;
    headers.push({text: th.textContent.trim(), display, left: rect.left, right: rect.right});
  }
  box.scrollLeft = 0;
  tables.push({id: table.id, overflow: getComputedStyle(box).overflowX, right: box.getBoundingClientRect().right,
               headers});
}
return tables;
"""


@pytest.fixture(scope="module")
def phone_runs(live_server: LiveServer) -> tuple[int, int]:
    """Two evaluated runs of `phonenet` (so the run page shows its trust columns, and compare has a pair)."""
    dashboard = live_server.dashboard
    first = seed_run(dashboard.engine, dashboard.settings, model_name="phonenet", layers=LAYERS, evaluated=True)
    second = seed_run(dashboard.engine, dashboard.settings, model_name="phonenet", layers=LAYERS, evaluated=True)
    return first.run_id, second.run_id


@pytest.fixture(scope="module")
def phone(new_browser: Callable[[], Any]) -> Any:
    """A Chromium emulating a 390 px wide phone."""
    driver = new_browser()
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    return driver


def open_page(driver: Any, url: str, scheme: str) -> None:
    """Open `url` in the light or dark scheme and wait until htmx has loaded the page's lazy parts."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", message="the page")
    wait_for(lambda: driver.execute_script("return !document.querySelector('.htmx-request')"), message="htmx requests")


def save(driver: Any, name: str) -> None:
    """Save the whole page, as a phone shows it, to tests/browser/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def pages(run_id: int, other_id: int) -> dict[str, str]:
    return {
        "home": "/",
        "run": f"/runs/{run_id}",
        "layer": f"/runs/{run_id}/layers/conv1",
        "neuron": f"/runs/{run_id}/layers/conv1/neurons/3?concept=striped",
        "compare": f"/runs/{run_id}/compare?other={other_id}",
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_fits_a_phone_and_keeps_its_trust_columns(phone, live_server, phone_runs, scheme):
    from selenium.webdriver.common.by import By

    for name, path in pages(*phone_runs).items():
        open_page(phone, live_server.url + path, scheme)
        width = phone.execute_script("return document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways at 390 px ({width} px wide)"
        runs_links = [link for link in phone.find_elements(By.CSS_SELECTOR, "header a") if link.text == "Runs"]
        assert len(runs_links) == 1, f"{name}'s header links Runs {len(runs_links)} times"
        for table in phone.execute_script(TABLES_JS):
            assert table["right"] <= PHONE["width"] + 0.5, f"a table of {name} overflows the page: {table}"
            for header in table["headers"]:
                if any(header["text"].startswith(trust) for trust in TRUST_HEADERS):
                    assert header["display"] != "none", f"{name} hides {header['text']!r} on a phone"
                    assert table["overflow"] in ("auto", "scroll"), f"{name}'s table cannot scroll to {header}"
                    assert header["left"] >= 0 and header["right"] <= PHONE["width"] + 0.5, (name, header)
        save(phone, f"phone_{name}_{scheme}")


def test_the_run_table_has_its_trust_columns(phone, live_server, phone_runs):
    open_page(phone, live_server.url + f"/runs/{phone_runs[0]}", "light")
    headers = {header["text"] for table in phone.execute_script(TABLES_JS) for header in table["headers"]}
    assert {"mean r", "grades", "generic"} <= headers  # the check above is not vacuous


def test_the_concept_box_is_near_the_top_of_a_neurons_page(phone, live_server, phone_runs):
    open_page(phone, live_server.url + pages(*phone_runs)["neuron"], "light")
    top = phone.execute_script(
        "return document.getElementById('concept-box').getBoundingClientRect().top + window.scrollY"
    )
    height = phone.execute_script("return document.documentElement.scrollHeight")
    assert top <= CONCEPT_BOX_MAX_Y, f"the concept box starts at {top:.0f} px of {height}"
