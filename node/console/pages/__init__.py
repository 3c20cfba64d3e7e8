"""The console's pages by path (node/console/common.py says what a page is). The network page
is the application's own (node/console/app.py): it is live over a WebSocket."""

from __future__ import annotations

from typing import Final

from node.console.common import PageFunc
from node.console.pages.audit import audit
from node.console.pages.exposure import exposure
from node.console.pages.search import search
from node.console.pages.taxforms import taxforms

PAGES: Final[dict[str, PageFunc]] = {
    "/search": search,
    "/exposure": exposure,
    "/taxforms": taxforms,
    "/audit": audit,
}
