"""Typed errors of the protocol core.

Every decoder, loader and validator raises a subclass of `CrossbillError` with a message a
person can act on; nothing leaks a bare exception from a library (orjson, PyNaCl, pycryptodome).
"""


class CrossbillError(Exception):
    """Base of every error the protocol core raises on bad input."""


class DecodeError(CrossbillError):
    """Bytes that are not a canonical encoding of the expected object.

    `path` names the offending field (``payload.pledges[1].amount``), empty for the whole input.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


class ValidationError(CrossbillError):
    """A well-formed object that breaks a rule; `code` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class ConfigError(CrossbillError):
    """A consortium configuration (genesis file) that cannot be used; the message names the key."""


class KeyFileError(CrossbillError):
    """A key file that cannot be read: malformed, too weak, or the wrong passphrase."""


class CryptoError(CrossbillError):
    """Malformed key or signature material (wrong length, not a curve point)."""
