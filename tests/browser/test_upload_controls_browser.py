"""The upload form's class names field, and the top bar's Upload link shown only to those who may upload, at
light, dark and 390 px (#26)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.browser.conftest import LiveServer, wait_for
from tests.browser.test_jobs_and_deletes_browser import _shots
from tests.support.dashboard_seed import TinyNet

pytestmark = pytest.mark.browser


def test_the_upload_form_takes_a_class_names_file_and_shows_a_miscount_beside_it(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    checkpoint = tmp_path / "tiny.pt"
    torch.save(TinyNet().state_dict(), checkpoint)  # its head (fc) has 3 outputs
    names = tmp_path / "names.txt"
    names.write_text("cat\n\ndog\n")
    browser.get(f"{live_server.url}/upload")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "input[name=layers]"), message="the layer picker")
    field = browser.find_element(By.ID, "class_names")
    assert field.get_attribute("type") == "file" and field.is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "label[for=class_names]").text.startswith("Class names")
    assert "one per line in output order" in browser.find_element(By.ID, "class-names-help").text

    browser.find_element(By.ID, "checkpoint").send_keys(str(checkpoint))
    field.send_keys(str(names))
    browser.find_element(By.CSS_SELECTOR, "form.upload-form button[type=submit]").click()
    error = wait_for(lambda: browser.find_elements(By.ID, "class_names-error"), message="the class names error")
    assert "head has 3 outputs but the class names file has 2 lines" in error[0].text
    assert browser.find_element(By.ID, "class_names").get_attribute("aria-invalid") == "true"
    _shots(browser, "upload_class_names")


def test_the_top_bars_upload_link_shows_only_to_those_who_may_upload(
    browser: Any, new_browser: Callable[[], Any], live_server: LiveServer
) -> None:
    from selenium.webdriver.common.by import By

    anonymous = new_browser()
    anonymous.get(f"{live_server.url}/")
    wait_for(lambda: anonymous.find_element(By.ID, "account").text == "Log in", message="the Log in link")
    assert not anonymous.find_elements(By.CSS_SELECTOR, ".topnav a[href='/upload']")
    _shots(anonymous, "topbar_anonymous")

    browser.get(f"{live_server.url}/")
    link = wait_for(lambda: browser.find_elements(By.ID, "upload-link"), message="the editor's Upload link")
    assert link[0].text == "Upload" and link[0].is_displayed()
    _shots(browser, "topbar_editor")
