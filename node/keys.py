"""Key generation and key files on disk: the randomness and I/O around `protocol.crypto`."""

from __future__ import annotations

import os
import pathlib

from node.files import LooseFileModeError, check_private_file, create_private_file
from protocol import codec, crypto, limits
from protocol.errors import DecodeError, KeyFileError

PASSPHRASE_ENV = "CROSSBILL_PASSPHRASE"


def generate_key() -> crypto.PrivateKey:
    return crypto.PrivateKey(os.urandom(32))


def write_key_file(path: pathlib.Path, key: crypto.PrivateKey, passphrase: str,
                   scrypt_log_n: int = limits.KEYFILE_SCRYPT_LOG_N_DEFAULT) -> None:
    """Encrypt `key` into `path`, created with mode 0600; refuses to overwrite a file."""
    data = crypto.seal_key(key, passphrase, salt=os.urandom(16), nonce=os.urandom(12),
                           scrypt_log_n=scrypt_log_n)
    try:
        create_private_file(path, data)
    except FileExistsError:
        raise KeyFileError(f"{path} exists: refusing to overwrite a key file") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None


def _check_private(path: pathlib.Path, what: str) -> None:
    try:
        check_private_file(path, what)
    except LooseFileModeError as exc:
        raise KeyFileError(str(exc)) from None


def read_key_file(path: pathlib.Path, passphrase: str) -> crypto.PrivateKey:
    """The key in `path`; refused (KeyFileError) when group or others may read or write it."""
    _check_private(path, "key file")
    try:
        with open(path, "rb") as f:
            data = f.read(limits.KEYFILE_BYTES_MAX + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        return crypto.open_key(data, passphrase)
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def read_public_key(path: pathlib.Path) -> tuple[bytes, bytes]:
    """(key id, public key) of a key file, without its passphrase."""
    try:
        with open(path, "rb") as f:
            kf = codec.decode(crypto.KeyFile, f.read(limits.KEYFILE_BYTES_MAX + 1),
                              max_bytes=limits.KEYFILE_BYTES_MAX)
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    except DecodeError as exc:
        raise KeyFileError(f"{path}: not a Crossbill key file: {exc}") from None
    return crypto.key_id_of(kf.public_key), kf.public_key


def passphrase_from_env_or_file(passphrase_file: pathlib.Path | None) -> str:
    """The passphrase from a file (first line) or from $CROSSBILL_PASSPHRASE."""
    if passphrase_file is not None:
        _check_private(passphrase_file, "passphrase file")
        try:
            text = passphrase_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyFileError(
                f"cannot read passphrase file {passphrase_file}: {exc.strerror}") from None
        return text.splitlines()[0] if text else ""
    value = os.environ.get(PASSPHRASE_ENV)
    if value is None:
        raise KeyFileError(f"no passphrase: set ${PASSPHRASE_ENV} or pass --passphrase-file")
    return value
