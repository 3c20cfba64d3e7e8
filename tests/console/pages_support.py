"""What the page tests share: a page rendered to HTML as the application renders it, and a
fake NodeApi of canned answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2

from node.console.app import environment, nav
from node.console.common import ConsoleError, Page, Viewer

ENV = environment()
ENV.undefined = jinja2.StrictUndefined  # a name a template uses and the page did not give


def render(page: Page, viewer: Viewer | None = None) -> str:
    """The page as the application renders it (node/console/app.py)."""
    return ENV.get_template(page.template).render(
        {**page.context, "title": page.title, "nav": nav(),
         "viewer": viewer or Viewer("regulator.safe-qd", "regulator")})


Answer = Any | ConsoleError | Callable[[dict[str, Any]], Any]


class FakeNode:
    """Canned answers by method (a value, a ConsoleError to raise, or a function of the
    params); every call is recorded; a method with no answer is the node's not found."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        params = params or {}
        self.calls.append((method, params))
        answer = self.answers.get(method, ConsoleError(404, "Not found", f"no {method}"))
        if callable(answer) and not isinstance(answer, ConsoleError):
            answer = answer(params)
        if isinstance(answer, ConsoleError):
            raise answer
        return answer
