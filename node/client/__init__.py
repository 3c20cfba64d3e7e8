"""The Crossbill client library: build, sign and submit every transaction type and run every
query, synchronously (`Client`) or with trio (`AsyncClient`).

    from node.client import Client, TxBuilder
    builder = TxBuilder(key, chain_id="crossbill-devnet", signer="customs.qd")
    with Client("http://127.0.0.1:7201") as c:
        tx = builder.build("declaration.register", declaration_no="QD-1", ...)
        receipt = c.submit(tx, wait=True)
        c.declaration("QD-1")
"""

from node.client.aio import AsyncClient
from node.client.api import Credential
from node.client.sync import Client
from node.client.transport import RpcError
from node.client.txbuild import TxBuilder, build_payload, payload_fields

__all__ = ["AsyncClient", "Client", "Credential", "RpcError", "TxBuilder", "build_payload",
           "payload_fields"]
