"""The rough edges a first-time user hit on the layer grid, the neuron page, the home page and the upload form."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.browser.test_dashboard_browser import cards, wait_for

pytestmark = pytest.mark.browser
LAYER = "blocks.3"
SCREENS = SCREENSHOTS


def _layer(live_server: LiveServer, query: str = "") -> str:
    return f"{live_server.url}/runs/{live_server.dashboard.newer.run_id}/layers/{LAYER}{query}"


def _pager_text(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, "#grid-pager .mono").text


def test_load_more_moves_the_pager_and_a_reload_shows_the_same_cards(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    browser.get(_layer(live_server))
    wait_for(lambda: len(cards(browser)) == 96, message="96 cards")
    browser.find_element(By.CSS_SELECTOR, "button.load-more").click()
    wait_for(lambda: len(cards(browser)) == 192, message="the second page appended")
    wait_for(lambda: _pager_text(browser).startswith("pages 1–2"), message="the pager saying pages 1–2")
    next_link = browser.find_element(By.CSS_SELECTOR, "#grid-pager a[rel=next]")
    assert "page=3" in next_link.get_attribute("href")
    assert browser.current_url.endswith("?page=2&start=1")
    assert browser.find_element(By.ID, "grid-shown").text == "1–192"
    browser.refresh()
    wait_for(lambda: len(cards(browser)) == 192, message="both pages after a reload")
    assert cards(browser)[0].get_attribute("id") == "unit-0"
    browser.get(_layer(live_server, "?page=3"))
    wait_for(lambda: cards(browser), message="page 3")
    assert cards(browser)[0].get_attribute("id") == "unit-192"
    assert _pager_text(browser).startswith("page 3")


def test_arrow_keys_do_not_page_the_grid(browser: Any, live_server: LiveServer) -> None:
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(_layer(live_server))
    wait_for(lambda: len(cards(browser)) == 96, message="96 cards")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    time.sleep(0.5)
    assert "page=" not in browser.current_url


def test_sort_and_filter_stay_in_the_url_and_carry_to_the_neuron_page(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    browser.get(_layer(live_server))
    Select(browser.find_element(By.ID, "grid-sort")).select_by_value("-unit")
    wait_for(lambda: "sort=-unit" in browser.current_url, message="the sort in the URL")
    wait_for(lambda: cards(browser)[0].get_attribute("id") == "unit-2047", message="sorted by unit, descending")
    browser.refresh()
    wait_for(lambda: cards(browser)[0].get_attribute("id") == "unit-2047", message="the sort after a reload")
    cards(browser)[1].click()
    wait_for(lambda: "/neurons/2046" in browser.current_url, message="the neuron page")
    assert "sort=-unit" in browser.current_url
    next_link = browser.find_element(By.ID, "next-link")
    assert "/neurons/2045?sort=-unit" in next_link.get_attribute("href")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    wait_for(lambda: "/neurons/2045?sort=-unit" in browser.current_url, message="→ in the grid's order")


def test_typed_concept_is_in_the_url(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    browser.get(_layer(live_server))
    browser.find_element(By.ID, "concept-q").send_keys("striped")
    wait_for(lambda: "concept=striped" in browser.current_url, message="the concept in the URL")
    browser.get(_layer(live_server, "?concept=striped"))
    wait_for(lambda: browser.find_element(By.ID, "concept-q").get_attribute("value") == "striped", message="restored")
    wait_for(lambda: browser.find_element(By.ID, "concept-results").text.strip(), message="its ranking")


def _no_sideways_scroll(browser: Any) -> bool:
    return bool(browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"))


def _shot(browser: Any, name: str, dark: bool = False) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
    )
    SCREENS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENS / f"{name}.png"))


def test_phone_width(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 900)
    try:
        browser.get(live_server.url + "/")
        wait = browser.execute_script("return document.readyState")
        assert wait == "complete"
        assert _no_sideways_scroll(browser), browser.execute_script(
            "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > "
            "window.innerWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className).join(', ')"
        )
        _shot(browser, "home_phone")
        browser.get(_layer(live_server))
        wait_for(lambda: cards(browser), message="cards")
        concept = browser.find_element(By.ID, "concept-q").location["y"]
        grid = browser.find_element(By.ID, "grid").location["y"]
        assert concept < grid, "the concept panel comes before the cards on a phone"
        _shot(browser, "layer_phone")
    finally:
        browser.set_window_size(1440, 1000)
        _shot(browser, "_reset")


def test_upload_form_preselects_the_main_stages(browser: Any, live_server: LiveServer) -> None:
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + "/upload")
    checked = [
        box.get_attribute("value") for box in browser.find_elements(By.CSS_SELECTOR, ".main-layers input:checked")
    ]
    assert checked, "the main stages are pre-selected"
    others = browser.find_elements(By.CSS_SELECTOR, "#other-layers [data-layer-name]")
    if others:
        browser.find_element(By.CSS_SELECTOR, ".more-layers summary").click()
        box = browser.find_element(By.CSS_SELECTOR, "input.layer-filter")
        name = others[-1].get_attribute("data-layer-name")
        box.send_keys(name)
        assert all(option.is_displayed() == (name in option.get_attribute("data-layer-name")) for option in others)
    _shot(browser, "upload_light")
    _shot(browser, "upload_dark", dark=True)
    _shot(browser, "_reset")


def test_choosing_an_architecture_loads_its_layers_from_the_url_its_option_names(
    browser: Any, live_server: LiveServer
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + "/upload")
    browser.execute_script("document.getElementById('layer-picker').innerHTML = '<p id=\"stale\">stale</p>'")
    select = browser.find_element(By.ID, "architecture")
    browser.execute_script("arguments[0].dispatchEvent(new Event('change', {bubbles: true}))", select)
    wait_for(
        lambda: (
            not browser.find_elements(By.ID, "stale")
            and browser.find_elements(By.CSS_SELECTOR, "#layer-picker input[name=layers]")
        ),
        message="the architecture's layers in place of the stale list",
    )
