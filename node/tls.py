"""TLS contexts for JSON-RPC and WebSocket (ADR 0023): the node's server context from the
[rpc] tls_* files and the clients' context from a CA bundle (and optional client certificate).

Both: TLS 1.2 at least (1.3 preferred: OpenSSL negotiates the highest both sides speak), no
compression. The server's key file is checked for loose permissions like the other key files.
"""

from __future__ import annotations

import pathlib
import ssl
from typing import Final

from node.files import check_private_file

TLS_VERSION_MIN: Final = ssl.TLSVersion.TLSv1_2


class TlsConfigError(Exception):
    """A TLS file that cannot be used: the message names the file and the cause."""


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = TLS_VERSION_MIN
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def server_context(cert_file: pathlib.Path, key_file: pathlib.Path,
                   client_ca_file: pathlib.Path | None = None) -> ssl.SSLContext:
    """The node's TLS server context; with `client_ca_file`, clients must present a
    certificate that CA signed (mutual TLS). Raises `LooseFileModeError` for a key file others
    may read and `TlsConfigError` for a file that cannot be loaded."""
    check_private_file(key_file, "RPC TLS key file")
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load the TLS certificate {cert_file} with its key "
                             f"{key_file}: {exc}") from None
    if client_ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot load the client CA file {client_ca_file}: "
                                 f"{exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca_file: pathlib.Path | str | None = None,
                   cert_file: pathlib.Path | str | None = None,
                   key_file: pathlib.Path | str | None = None) -> ssl.SSLContext:
    """A client context that verifies the node's certificate and host name against `ca_file`
    (the system's CAs when None) and presents `cert_file`/`key_file` when given (mutual TLS)."""
    try:
        ctx = _harden(ssl.create_default_context(
            cafile=None if ca_file is None else str(ca_file)))
        if cert_file is not None:
            ctx.load_cert_chain(str(cert_file), None if key_file is None else str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load the client TLS files (CA {ca_file}, certificate "
                             f"{cert_file}): {exc}") from None
    return ctx
