"""What the sync and async clients share: credentials, signed reads, and one wrapper per
JSON-RPC method (each returns `self.call(...)`: a value for `Client`, an awaitable for
`AsyncClient`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Final

from node import credentials
from protocol import codec, crypto, types

WAIT_MS_DEFAULT: Final = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Credential:
    """A client credential: a name listed in the node's [rpc] clients and its key.

    Each request is signed anew (RFC 9421 request signature: a fresh `created` and nonce;
    ADR 0033) for the node it is for (`audience`: the node's institution id, which
    `node.status` tells as `institution`); `Client` and `AsyncClient` ask the node once when
    `audience` is not given (ADR 0020)."""

    name: str
    key: crypto.PrivateKey
    audience: str | None = None

    def __call__(self, http_method: str, path: str, body: bytes,
                 audience: str) -> dict[str, str]:
        """The headers that sign one request (Content-Digest, Signature-Input, Signature)."""
        return credentials.signature_headers(self.key, self.name, http_method, path, body,
                                             int(time.time()), os.urandom(16).hex(),
                                             self.audience or audience)


@dataclass(frozen=True)
class ReadSigner:
    """Signs confidential read requests (credit files, the audit list) as `reader`, with a
    key the ledger lists for it."""

    key: crypto.PrivateKey
    reader: str
    chain_id: str

    def auth(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return credentials.sign_read(self.key, self.chain_id, method, params, self.reader, now_ms())


class Queries:
    """One wrapper per method; subclasses provide `call(method, params)`."""

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    # transactions and blocks
    def submit(self, tx: types.Tx, wait: bool = False, timeout_ms: int = WAIT_MS_DEFAULT,
               reject_as_error: bool = False) -> Any:
        return self.call("tx.submit", {"tx": codec.to_json(tx), "wait": wait,
                                       "timeout_ms": timeout_ms,
                                       "reject_as_error": reject_as_error})

    def tx(self, tx_id: bytes | str) -> Any:
        return self.call("tx.get", {"tx_id": tx_id if isinstance(tx_id, str) else tx_id.hex()})

    def txs_by_signer(self, signer: str, limit: int = 20,
                      before_height: int | None = None) -> Any:
        params: dict[str, Any] = {"signer": signer, "limit": limit}
        if before_height is not None:
            params["before_height"] = before_height
        return self.call("tx.list", params)

    def txs_by_record(self, kind: str, record_id: str, limit: int = 20) -> Any:
        return self.call("tx.list", {"kind": kind, "id": record_id, "limit": limit})

    def block(self, height: int | None = None, block_hash: str | None = None) -> Any:
        if block_hash is not None:
            return self.call("block.get", {"hash": block_hash})
        return self.call("block.get", {"height": height})

    # node and consortium
    def status(self) -> Any:
        return self.call("node.status")

    def health(self) -> Any:
        return self.call("node.health")

    def consortium(self) -> Any:
        return self.call("consortium.get")

    def discover(self) -> Any:
        return self.call("rpc.discover")

    # records
    def institution(self, institution: str) -> Any:
        return self.call("institution.get", {"institution": institution})

    def enterprise(self, uscc: str) -> Any:
        return self.call("enterprise.get", {"uscc": uscc})

    def declaration(self, declaration_no: str) -> Any:
        return self.call("declaration.get", {"declaration_no": declaration_no})

    def financing(self, financing_id: str) -> Any:
        return self.call("financing.get", {"financing_id": financing_id})

    def taxform(self, form_no: str) -> Any:
        return self.call("taxform.get", {"form_no": form_no})

    def payment(self, payment_id: str) -> Any:
        return self.call("payment.get", {"payment_id": payment_id})

    def proceeds(self, proceeds_id: str) -> Any:
        return self.call("proceeds.get", {"proceeds_id": proceeds_id})

    def consent(self, uscc: str, bank: str) -> Any:
        return self.call("consent.get", {"uscc": uscc, "bank": bank})

    def history(self, kind: str, record_id: str) -> Any:
        return self.call("record.history", {"kind": kind, "id": record_id})

    # confidential reads (ADR 0024)
    def credit_file(self, uscc: str, read_tx: bytes | str | None,
                    signer: ReadSigner | None = None, reader: str | None = None) -> Any:
        """The credit file released by the reader's committed credit.read `read_tx` (None: the
        enterprise reading its own file); signed by `signer`, or proven by this client's
        credential named `reader`. Entries come sealed: `node.client.sealing.open_credit_file`
        opens them with the reader's keyring."""
        params: dict[str, Any] = {"uscc": uscc}
        if read_tx is not None:
            params["read_tx"] = read_tx if isinstance(read_tx, str) else read_tx.hex()
        if signer is not None:
            params["auth"] = signer.auth("credit.read", params)
        elif reader is not None:
            params["reader"] = reader
        return self.call("credit.read", params)

    def credit_reads_audit(self, signer: ReadSigner, limit: int = 20, uscc: str = "",
                           from_height: int = 0, from_index: int = 0) -> Any:
        params: dict[str, Any] = {"limit": limit, "from_height": from_height,
                                  "from_index": from_index}
        if uscc:
            params["uscc"] = uscc
        params["auth"] = signer.auth("audit.credit_reads", params)
        return self.call("audit.credit_reads", params)

    def credit_file_keys(self, uscc: str) -> Any:
        return self.call("credit.file_keys", {"uscc": uscc})

    def encryption_key(self, owner: str) -> Any:
        return self.call("encryption_key.get", {"owner": owner})

    def sealing_recipients(self, recorder: str, enterprise: str = "",
                           credit_file: str = "") -> Any:
        params: dict[str, Any] = {"recorder": recorder}
        if enterprise:
            params["enterprise"] = enterprise
        if credit_file:
            params["credit_file"] = credit_file
        return self.call("sealing.recipients", params)

    # issue 17: capital-account income payments (protocol version 2; docs/domain.md §4.11)
    def document(self, document_id: str) -> Any:
        return self.call("document.get", {"document_id": document_id})

    def documents(self, uscc: str, after: str = "", limit: int = 100) -> Any:
        params: dict[str, Any] = {"uscc": uscc, "limit": limit}
        if after:
            params["after"] = after
        return self.call("document.list", params)

    def capital_payment(self, payment_id: str, signer: ReadSigner | None = None,
                        reader: str | None = None) -> Any:
        """For the regulator, the recording bank or the enterprise: signed by `signer`, or
        proven by this client's credential named `reader`."""
        return self._proven("capital.get", {"payment_id": payment_id}, signer, reader)

    def capital_payments(self, by: str, of: str = "", signer: ReadSigner | None = None,
                         reader: str | None = None, after: str = "", limit: int = 100) -> Any:
        """A list (`by`: all, enterprise, document, bank, flagged; `of`: whose), paged."""
        params: dict[str, Any] = {"by": by, "limit": limit}
        if of:
            params["id"] = of
        if after:
            params["after"] = after
        return self._proven("capital.list", params, signer, reader)

    def _proven(self, method: str, params: dict[str, Any], signer: ReadSigner | None,
                reader: str | None) -> Any:
        if signer is not None:
            params["auth"] = signer.auth(method, params)
        elif reader is not None:
            params["reader"] = reader
        return self.call(method, params)
