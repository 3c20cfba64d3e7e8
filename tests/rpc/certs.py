"""Throwaway X.509 material for the TLS tests and benchmark: a CA, certificates it signs
(server or client, valid or expired), written as PEM files (keys mode 0600). The certificates
are made by the product's node/certs.py (what `crossbill network init` uses)."""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass

from node.certs import CertificateAuthority
from node.files import create_private_file

CERT_VALIDITY_DAYS = 2


@dataclass(frozen=True)
class Issued:
    cert: pathlib.Path
    key: pathlib.Path


class Ca:
    def __init__(self, directory: pathlib.Path, name: str) -> None:
        self.name = name
        self.authority = CertificateAuthority.create(name, validity_days=CERT_VALIDITY_DAYS)
        self.directory = directory
        self.cert_file = directory / f"{name}-ca.pem"
        self.cert_file.write_bytes(self.authority.cert_pem)

    def issue(self, name: str, *, server: bool = True, expired: bool = False) -> Issued:
        """A certificate for `name` (server: for 127.0.0.1 and localhost)."""
        now = None
        if expired:  # valid from 11 days ago to 9 days ago
            now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=11)
        issued = self.authority.issue(name, ["127.0.0.1", "localhost"], server=server,
                                      validity_days=CERT_VALIDITY_DAYS, now=now)
        out = Issued(self.directory / f"{name}.pem", self.directory / f"{name}-key.pem")
        out.cert.write_bytes(issued.cert_pem)
        out.key.unlink(missing_ok=True)
        create_private_file(out.key, issued.key_pem)
        return out
