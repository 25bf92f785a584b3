"""The neuron page's 20 top images in headless Chromium: ten a page, the pager, and a heatmap toggle that
survives paging and previous/next; screenshots of the section in light and dark (and at phone width)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.persistence.store import store_run
from tests.browser.conftest import SCREENSHOTS, LiveServer, start_server, wait_for
from tests.support.dashboard_seed import build_dashboard
from tests.support.fakes import fake_result, make_images

pytestmark = pytest.mark.browser
SCREENS = SCREENSHOTS


@pytest.fixture(scope="module")
def twenty_tops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, int]]:
    """A live server over a seeded dashboard plus one stored run with 20 top images per neuron."""
    root = tmp_path_factory.mktemp("top_images_browser")
    dashboard = build_dashboard(root / "data")
    result = fake_result(make_images(root / "probe", 24, size=(96, 80)), n_top=20, model="twenty-tops-net")
    run_id = store_run(dashboard.engine, dashboard.settings, result)
    server = start_server(dashboard)
    yield server, run_id
    server.stop()
    dashboard.engine.dispose()


def figures(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#top-images figure.top-image")


def heatmaps_shown(driver: Any) -> bool:
    return bool(
        driver.execute_script(
            "const maps = [...document.querySelectorAll('#top-images .heatmap')];"
            "return maps.length > 0 && maps.every(m => getComputedStyle(m).display !== 'none');"
        )
    )


def click(driver: Any, element: Any) -> None:
    """Click an element wherever the page is scrolled (the sticky header may cover it)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def set_scheme(driver: Any, scheme: str) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )


def test_pager_and_heatmap_toggle_survive_paging_and_previous_next(
    new_browser: Callable[[], Any], twenty_tops_server: tuple[LiveServer, int]
) -> None:
    from selenium.webdriver.common.by import By

    server, run_id = twenty_tops_server
    permalink = f"/runs/{run_id}/layers/layer1/neurons/2"
    driver = new_browser()
    driver.get(server.login_link(permalink))
    wait_for(lambda: len(figures(driver)) == 10, message="the first ten top images")
    assert "1–10 of 20 top images" in driver.page_source
    assert figures(driver)[0].find_element(By.CSS_SELECTOR, "figcaption").text.startswith("#1")
    toggle = driver.find_element(By.ID, "heatmap-toggle")
    assert not toggle.is_selected() and not heatmaps_shown(driver)
    toggle.click()
    assert heatmaps_shown(driver)

    driver.find_element(By.ID, "top-next").click()
    wait_for(lambda: "top_page=2" in driver.current_url, message="page 2 of the top images")
    wait_for(lambda: "11–20 of 20 top images" in driver.page_source, message="images 11–20")
    assert len(figures(driver)) == 10
    assert figures(driver)[0].find_element(By.CSS_SELECTOR, "figcaption").text.startswith("#11")
    assert driver.find_element(By.ID, "heatmap-toggle").is_selected() and heatmaps_shown(driver)
    assert not driver.find_elements(By.ID, "top-next")  # the last page

    click(driver, driver.find_element(By.ID, "next-link"))  # the next neuron keeps the toggle too
    wait_for(lambda: driver.current_url.endswith("/neurons/3"), message="the next neuron")
    assert driver.find_element(By.ID, "heatmap-toggle").is_selected() and heatmaps_shown(driver)
    driver.find_element(By.ID, "heatmap-toggle").click()
    click(driver, driver.find_element(By.ID, "prev-link"))
    wait_for(lambda: driver.current_url.endswith("/neurons/2"), message="the previous neuron")
    assert not driver.find_element(By.ID, "heatmap-toggle").is_selected() and not heatmaps_shown(driver)

    # Every image on the page loads: the crops and heatmaps cut on request included.
    driver.find_element(By.ID, "heatmap-toggle").click()
    broken = driver.execute_script(
        "return [...document.querySelectorAll('#top-images img')].filter(i => i.complete && i.naturalWidth === 0)"
        ".map(i => i.src);"
    )
    assert broken == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_the_top_images(
    new_browser: Callable[[], Any], twenty_tops_server: tuple[LiveServer, int], scheme: str
) -> None:
    from selenium.webdriver.common.by import By

    server, run_id = twenty_tops_server
    driver = new_browser()
    set_scheme(driver, scheme)
    driver.get(server.login_link(f"/runs/{run_id}/layers/layer1/neurons/5?top_page=2"))
    wait_for(lambda: len(figures(driver)) == 10, message="the second page of top images")
    driver.find_element(By.ID, "heatmap-toggle").click()
    wait_for(
        lambda: driver.execute_script(
            "return [...document.querySelectorAll('#top-images img')].every(i => i.complete && i.naturalWidth > 0)"
        ),
        message="every top image to load",
    )
    SCREENS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1440, 1100)
    driver.save_screenshot(str(SCREENS / f"top_images_{scheme}.png"))
    driver.set_window_size(390, 1600)
    section = driver.find_element(By.ID, "top-images-section")
    assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth + 1", section)
    driver.save_screenshot(str(SCREENS / f"top_images_{scheme}_phone.png"))
