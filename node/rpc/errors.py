"""Application error codes of the JSON-RPC API (JSON-RPC leaves -32000..-32099 to servers).

    -32001  UNAUTHORIZED     a write without a valid client credential; `data.reason` (and,
                             for a refused credential (HTTP 401), `data.rule`; ADR 0033)
    -32002  FORBIDDEN        (HTTP 403) the request's Host or Origin is not this node's nor
                             configured (DNS rebinding; ADR 0020); `data.reason`
    -32010  TX_REFUSED       admission refused (envelope, signature, signer, role, chain):
                             `data.code` is the reason (BAD_SIGNATURE, UNKNOWN_SIGNER, ...)
    -32011  MEMPOOL_FULL     the node cannot take more transactions now: retry later
    -32012  BUSY             too many receipt waiters or subscriptions: retry later
    -32013  UPGRADE_REQUIRED this node stopped at the activation of a protocol version it does
                             not implement (ADR 0025): submit through an upgraded node
    -32014  STORAGE_UNAVAILABLE this node cannot write its store (disk full, I/O error; ADR
                             0031): it stopped ordering and applying until it can; submit
                             through another node
    -32020  NOT_FOUND        no such transaction, block, record or subscription
    -32030  READ_REFUSED     a confidential read refused: `data.code` is NO_CONSENT,
                             CONSENT_EXPIRED, UNKNOWN_READER, READER_SUSPENDED, BAD_READ_AUTH
                             (the proof of who reads is missing or wrong) or
                             READ_NOT_RECORDED (credit.read needs a recent credit.read
                             transaction of the reader on the ledger, ADR 0024)
    -32041..-32049           the ledger rejected a committed transaction (only with
                             tx.submit's `reject_as_error`), one code per reason-code family
                             of protocol/ledger/codes.py; `data.code` is the reason code,
                             `data.receipt` the receipt, `data.height`/`data.index` its place
    -32050  WEBSOCKET_ONLY   subscriptions need the WebSocket endpoint (GET /ws)
"""

from __future__ import annotations

from typing import Final

from protocol.ledger import codes

UNAUTHORIZED: Final = -32001
FORBIDDEN: Final = -32002
TX_REFUSED: Final = -32010
MEMPOOL_FULL_CODE: Final = -32011
BUSY: Final = -32012
UPGRADE_REQUIRED_CODE: Final = -32013
STORAGE_UNAVAILABLE_CODE: Final = -32014
NOT_FOUND: Final = -32020
READ_REFUSED: Final = -32030
WEBSOCKET_ONLY: Final = -32050

REJECTED_ENVELOPE: Final = -32041
REJECTED_INSTITUTION: Final = -32042
REJECTED_ENTERPRISE: Final = -32043
REJECTED_CONSENT: Final = -32044
REJECTED_DECLARATION: Final = -32045
REJECTED_FINANCING: Final = -32046
REJECTED_PAYMENT: Final = -32047
REJECTED_SEALING: Final = -32048  # encryption keys and sealed fields (ADR 0024)
REJECTED_PROTOCOL: Final = -32049  # protocol versions and their activation (ADR 0025)

# (JSON-RPC code, family name, reason codes) for receipts the ledger rejected.
REJECTION_FAMILIES: Final[tuple[tuple[int, str, frozenset[str]], ...]] = (
    (REJECTED_ENVELOPE, "envelope", frozenset({
        codes.WRONG_CHAIN, codes.UNKNOWN_TYPE, codes.UNKNOWN_SIGNER, codes.UNKNOWN_KEY,
        codes.KEY_RETIRED, codes.SIGNER_SUSPENDED, codes.ROLE_FORBIDDEN, codes.TX_EXPIRED,
        codes.EXPIRY_TOO_FAR, codes.NONCE_REPLAY})),
    (REJECTED_INSTITUTION, "institution", frozenset({
        codes.INSTITUTION_EXISTS, codes.UNKNOWN_INSTITUTION, codes.INVALID_ROLE,
        codes.BAD_PUBLIC_KEY, codes.ID_TAKEN, codes.ALREADY_SUSPENDED, codes.NOT_SUSPENDED,
        codes.CANNOT_SUSPEND_SELF, codes.KEY_EXISTS, codes.TOO_MANY_KEYS, codes.BAD_NODE,
        codes.PEER_ID_TAKEN, codes.NO_NODE, codes.NOT_A_BANK, codes.ALREADY_ORDERER,
        codes.NOT_ORDERER, codes.TOO_MANY_ORDERERS, codes.LAST_ORDERER,
        codes.UNKNOWN_PARAM, codes.PARAM_OUT_OF_RANGE, codes.FX_DATE_OUT_OF_RANGE,
        codes.SAME_CURRENCY})),
    (REJECTED_ENTERPRISE, "enterprise", frozenset({
        codes.UNKNOWN_ENTERPRISE, codes.NOT_SERVING_BANK, codes.ALREADY_REGISTERED,
        codes.ENTERPRISE_MISMATCH, codes.ENTERPRISE_KEY_CONFLICT, codes.TOO_MANY_BANKS,
        codes.ENTERPRISE_KEY_UNPROVEN,
        codes.ENTERPRISE_FROZEN, codes.FX_CLASS_C, codes.ALREADY_FROZEN, codes.NOT_FROZEN,
        codes.DUPLICATE_ENTRY, codes.ENTERPRISE_HAS_KEY, codes.NO_MANDATE,
        codes.MANDATE_EXPIRED, codes.SIGNER_MISMATCH})),
    (REJECTED_CONSENT, "consent", frozenset({
        codes.UNKNOWN_BANK, codes.CONSENT_EXPIRED, codes.NO_CONSENT})),
    (REJECTED_DECLARATION, "declaration", frozenset({
        codes.DECLARATION_EXISTS, codes.UNKNOWN_DECLARATION, codes.DECLARATION_CANCELLED,
        codes.DECLARATION_PLEDGED, codes.AMEND_BELOW_PLEDGED, codes.AMEND_BELOW_PROCEEDS,
        codes.BAD_DATE, codes.EXPORT_DATE_IN_FUTURE})),
    (REJECTED_FINANCING, "financing", frozenset({
        codes.FINANCING_EXISTS, codes.UNKNOWN_FINANCING, codes.NOT_LENDING_BANK,
        codes.BAD_FINANCING_STATUS, codes.DOUBLE_FINANCING, codes.ADVANCE_RATE_EXCEEDED,
        codes.DUPLICATE_PLEDGE, codes.EXPORTER_MISMATCH, codes.CURRENCY_MISMATCH,
        codes.PRINCIPAL_EXCEEDS_PLEDGES, codes.REPAYMENT_EXCEEDS_OUTSTANDING,
        codes.OUTSTANDING_BALANCE, codes.TOO_MANY_REPAYMENTS, codes.DECLARATION_NOT_PLEDGED,
        codes.APPLICATION_EXISTS, codes.APPLICATION_EXPIRED, codes.APPLICATION_MISMATCH,
        codes.APPLICATION_NOT_OPEN, codes.APPLICATION_OTHER_BANK, codes.NO_APPLICATION,
        codes.EXCEEDS_APPLICATION, codes.BAD_EXPIRY, codes.BAD_MATURITY,
        codes.COLLATERAL_SHORTFALL, codes.FINANCING_LAPSED, codes.FX_CLASS_B_TENOR,
        codes.FX_RATE_MISSING, codes.NO_PLEDGES, codes.RECEIVABLE_COLLECTED,
        codes.RECEIVABLE_TOO_OLD, codes.TOO_MANY_FINANCINGS, codes.TOO_MANY_PLEDGES,
        codes.REASON_REQUIRED,
        # issue 17: insurance
        *codes.INSURANCE_TX_CODES})),
    (REJECTED_PAYMENT, "payment", frozenset({
        codes.PAYMENT_EXISTS, codes.PROCEEDS_EXISTS, codes.PROCEEDS_EXCEED_VALUE,
        codes.FORM_EXISTS, codes.UNKNOWN_FORM, codes.FORM_REVOKED, codes.FORM_EXCEEDED,
        codes.PAYER_MISMATCH, codes.NOT_RECORDING_BANK, codes.PAYMENT_REVERSED,
        codes.UNKNOWN_PAYMENT, codes.REVIEW_EXISTS, codes.REVIEW_EXPIRED, codes.REVIEW_MISMATCH,
        codes.REVIEW_REQUIRED, codes.REVIEW_USED, codes.UNKNOWN_REVIEW,
        # issue 17: capital-account income payments
        codes.DOCUMENT_EXISTS, codes.UNKNOWN_DOCUMENT, codes.WRONG_ISSUER,
        codes.DOCUMENT_REVOKED, codes.DOCUMENT_EXPIRED, codes.DOCUMENT_HASH_MISMATCH,
        codes.DOCUMENT_EXCEEDED})),
    (REJECTED_SEALING, "sealing", frozenset({
        codes.BAD_ENCRYPTION_KEY, codes.NO_ENCRYPTION_KEY, codes.SEALED_PARTIES,
        codes.BAD_FILE_KEY})),
    (REJECTED_PROTOCOL, "protocol", frozenset({
        codes.TYPE_NOT_ACTIVE, codes.UNKNOWN_VERSION, codes.VERSION_SCHEDULED,
        codes.ACTIVATION_PAST, codes.ACTIVATION_TOO_SOON, codes.ACTIVATION_TOO_FAR,
        codes.NO_ACTIVATION, codes.VERSION_ACTIVE, codes.NOT_LATEST_ACTIVATION})),
)


def rejection_family(reason_code: str) -> tuple[int, str]:
    """The JSON-RPC code and family name of a ledger reason code (envelope if unknown)."""
    for rpc_code, family, members in REJECTION_FAMILIES:
        if reason_code in members:
            return rpc_code, family
    return REJECTED_ENVELOPE, "envelope"


ERROR_DOCS: Final[dict[int, tuple[str, str]]] = {
    UNAUTHORIZED: ("Unauthorized", "a request without a valid client credential where one is "
                   "needed (writes; member reads off loopback): data.rule says which rule a "
                   "refused signature broke (ADR 0033)"),
    FORBIDDEN: ("Forbidden", "HTTP 403: the request's Host or Origin is not this node's nor "
                "configured ([rpc] allowed_hosts, cors_origins)"),
    TX_REFUSED: ("Transaction refused", "admission refused; data.code is the reason"),
    MEMPOOL_FULL_CODE: ("Mempool full", "retry later"),
    UPGRADE_REQUIRED_CODE: ("Upgrade required", "this node stopped at the activation of a "
                            "protocol version it does not implement; submit through an "
                            "upgraded node"),
    STORAGE_UNAVAILABLE_CODE: ("Storage unavailable", "this node cannot write its store (disk "
                               "full, I/O error) and stopped ordering and applying until it "
                               "can; submit through another node"),
    BUSY: ("Busy", "too many receipt waiters or subscriptions: retry later"),
    NOT_FOUND: ("Not found", "no such transaction, block, record or subscription"),
    READ_REFUSED: ("Read refused", "a confidential read refused; data.code is the reason"),
    WEBSOCKET_ONLY: ("WebSocket only", "subscriptions need the WebSocket endpoint GET /ws"),
    **{code: (f"Transaction rejected ({family})",
              f"the ledger rejected the transaction with a reason code of the {family} "
              "family (data.code)")
       for code, family, _ in REJECTION_FAMILIES},
}
