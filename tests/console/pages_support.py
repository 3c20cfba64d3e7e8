"""What the page tests share: a page rendered to HTML with the package's templates (a minimal
base.html stands in for the application's), a fake NodeApi of canned answers, and a NodeApi
over the Python client for a live node (tests/rpc/harness.py)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import jinja2

from node.client import AsyncClient
from node.client.transport import RpcError
from node.console.common import ConsoleError, Page, from_rpc_error, node_down

TEMPLATES = pathlib.Path(__file__).resolve().parents[2] / "node" / "console" / "templates"
BASE = ("<!doctype html><html><head><title>{{ title }}</title></head><body>"
        "{% block content %}{% endblock %}</body></html>")
ENV = jinja2.Environment(
    loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES)),
                                jinja2.DictLoader({"base.html": BASE})]),
    autoescape=True, undefined=jinja2.StrictUndefined)


def render(page: Page) -> str:
    return ENV.get_template(page.template).render(title=page.title, **page.context)


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


class ClientNode:
    """A NodeApi over node.client.AsyncClient: the node's errors as ConsoleErrors."""

    def __init__(self, client: AsyncClient, url: str) -> None:
        self.client = client
        self.url = url

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return await self.client.call(method, params)
        except RpcError as exc:
            raise from_rpc_error(method, exc.code, exc.message) from None
        except OSError as exc:
            raise node_down(self.url, str(exc)) from None
