"""The real-browser fixture (tests/console/browser.py) for every console test."""

from tests.console.browser import browser  # noqa: F401
