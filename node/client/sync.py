"""The synchronous client (stdlib HTTP, one keep-alive connection)."""

from __future__ import annotations

import pathlib
from typing import Any

from node.client.api import Credential, Queries
from node.client.transport import RpcClient


class Client(Queries, RpcClient):
    def __init__(self, url: str, timeout_s: float = 30.0,
                 credential: Credential | None = None, audience: str | None = None, *,
                 ca_file: pathlib.Path | str | None = None,
                 cert_file: pathlib.Path | str | None = None,
                 key_file: pathlib.Path | str | None = None) -> None:
        super().__init__(url, timeout_s=timeout_s, credential=credential, audience=audience,
                         ca_file=ca_file, cert_file=cert_file, key_file=key_file)

    def call(self, method: str, params: dict[str, Any] | None = None,
             timeout_s: float | None = None) -> Any:
        if method == "tx.submit" and params and params.get("wait"):
            timeout_s = max(timeout_s or self.timeout_s, params["timeout_ms"] / 1000 + 5)
        return RpcClient.call(self, method, params, timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
