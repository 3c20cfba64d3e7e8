"""A real browser for the console's tests: Debian's headless chromium through selenium and
chromium-driver (`./dev test` installs both), a laptop-sized window, and screenshots saved
into the test's output folder (tmp_path/"screenshots") with a copy under the pytest base
temporary directory's "console-screenshots", named after the test.

    def test_x(browser: Browser) -> None:
        browser.driver.get(url)
        browser.screenshot("network")

WebDriver calls block: from a trio test call them through `trio.to_thread.run_sync`.
"""

from __future__ import annotations

import pathlib
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest

CHROMIUM: Final = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER: Final = pathlib.Path("/usr/bin/chromedriver")
WINDOW_SIZE: Final = (1366, 768)  # a laptop screen, in CSS pixels
PAGE_LOAD_TIMEOUT_S: Final = 20.0
SCREENSHOTS_DIR: Final = "console-screenshots"


@dataclass
class Browser:
    driver: Any  # selenium.webdriver.Chrome
    folder: pathlib.Path  # tmp_path / "screenshots"
    shared: pathlib.Path  # basetemp / "console-screenshots" / <test>

    def screenshot(self, name: str) -> pathlib.Path:
        """Save the window as NAME.png in the test's folder and in the shared one."""
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
            raise ValueError(f"screenshot name {name!r}: 1-64 of [A-Za-z0-9._-]")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        if not self.driver.save_screenshot(str(path)):
            raise AssertionError(f"the browser saved no screenshot {path}")
        self.shared.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, self.shared / path.name)
        return path

    def wait_for(self, condition: Callable[[Any], Any], timeout_s: float,
                 what: str) -> Any:
        """Wait (blocking) until `condition(driver)` is true, under a deadline."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.05).until(condition)
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; page: "
                                 f"{self.driver.find_element('tag name', 'body').text[:800]!r}"
                                 ) from None


def missing() -> str | None:
    """Why no browser can start here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing: install chromium and chromium-driver (./dev test does)"
    return None


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: pathlib.Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    reason = missing()
    if reason is not None:  # a clear failure, not a skip: the browser tests are required
        pytest.fail(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    test = re.sub(r"[^A-Za-z0-9._-]", "_", request.node.name)[:100]
    try:
        yield Browser(driver, tmp_path / "screenshots",
                      tmp_path_factory.getbasetemp() / SCREENSHOTS_DIR / test)
    finally:
        driver.quit()
