"""What the record pages (search, exposure, tax forms, audit) share: amounts in minor units
shown with their currency, sealed fields shown as sealed (the console holds no decryption key:
it says to whom a field is sealed, never its ciphertext), and a record's history with who
signed each step (tx.get)."""

from __future__ import annotations

from typing import Any, Final

from node.console.common import ConsoleError, NodeApi

# Minor-unit exponents (ISO 4217) of the currencies that do not have two decimals.
CURRENCY_EXPONENTS: Final[dict[str, int]] = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3,
                                             "KWD": 3, "OMR": 3}
HISTORY_SIGNERS_MAX: Final = 50  # history items per record whose signer the page looks up


def money(amount: int, currency: str) -> str:
    """USD 540,000.00 for 54_000_000 minor units of USD."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, minor = divmod(abs(int(amount)), 10**exponent)
    text = f"{whole:,}" + (f".{minor:0{exponent}d}" if exponent else "")
    return f"{currency} {sign}{text}"


def amounts(pairs: Any) -> str:
    """[["USD", 90000000], ["CNY", 1]] (the API's Amounts) as "USD 900,000.00, CNY 0.01"."""
    shown = [money(int(amount), str(currency)) for currency, amount in pairs or ()]
    return ", ".join(shown) if shown else "none"


def add_amount(totals: dict[str, int], currency: str, amount: int) -> None:
    totals[currency] = totals.get(currency, 0) + int(amount)


def totals_text(totals: dict[str, int]) -> str:
    return amounts(sorted(totals.items()))


def sealed(field: Any, viewer_institution: str) -> dict[str, Any] | None:
    """A sealed field as the page shows it: encrypted, to whom, and whether to the viewer."""
    if not isinstance(field, dict) or "ciphertext" not in field:
        return None
    parties = [str(k.get("party", "")) for k in field.get("keys", ()) if isinstance(k, dict)]
    return {"parties": parties, "to_viewer": viewer_institution in parties}


def sealed_list(fields: Any, viewer_institution: str) -> list[dict[str, Any]]:
    out = [sealed(f, viewer_institution) for f in fields or ()]
    return [s for s in out if s is not None]


async def signed_history(node: NodeApi, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each history item (height, tx_id, tx_type) with its signer, key id, receipt code and
    the financing it names (if any) from tx.get: the newest HISTORY_SIGNERS_MAX of them; older
    ones keep what the record's view says."""
    out: list[dict[str, Any]] = []
    first_looked_up = max(0, len(history) - HISTORY_SIGNERS_MAX)
    for index, item in enumerate(history):
        row = {"signer": "", "key_id": "", "code": "", "signer_error": "", "financing_id": "",
               **item}
        if index >= first_looked_up:
            try:
                tx = await node.call("tx.get", {"tx_id": item["tx_id"]})
            except ConsoleError as exc:
                if exc.status == 503:
                    raise
                row["signer_error"] = exc.message
            else:
                body = tx.get("tx") or {}
                row["signer"] = body.get("signer", "")
                row["key_id"] = body.get("key_id", "")
                row["code"] = (tx.get("receipt") or {}).get("code", "")
                row["financing_id"] = str((body.get("payload") or {}).get("financing_id", ""))
        out.append(row)
    return out
