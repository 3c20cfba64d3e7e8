"""X.509 certificates for the RPC's TLS (ADR 0023, "Test networks"): a self-signed consortium CA
(ECDSA P-256) and server certificates it signs for each node's RPC address.

`crossbill network init` and the devnet use it to give a test network TLS out of the box; the
TLS tests and benchmark use it for throwaway material (client certificates, expired ones).
Production operators bring certificates from their own CA (deploy/README.md): a CA whose key
sat in the directory `network init` wrote is fit for a test network only.

Everything is made in memory (`Issued` holds PEM bytes); writing is the caller's, keys with
node.files.create_private_file (mode 0600).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY_DAYS: Final = 3650            # the consortium CA of a test network: ten years
SERVER_CERT_VALIDITY_DAYS: Final = 825    # what browsers and most TLS stacks still accept
VALIDITY_DAYS_MIN: Final = 1
CA_VALIDITY_DAYS_MAX: Final = 7300
SERVER_CERT_VALIDITY_DAYS_MAX: Final = 3650
CLOCK_SKEW_S: Final = 3600                # not-before is this far back: a host's clock may lag
SUBJECT_NAME_CHARS_MAX: Final = 64        # X.509's upper bound for a common name
SAN_ENTRIES_MAX: Final = 16


class CertificateError(Exception):
    """Certificate parameters that cannot be used (a bound, an address); names the value."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    if not 0 < len(common_name) <= SUBJECT_NAME_CHARS_MAX:
        raise CertificateError(f"common name {common_name!r}: 1 to {SUBJECT_NAME_CHARS_MAX} "
                               "characters")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _bounds(now: datetime.datetime | None, days: int, max_days: int,
            what: str) -> tuple[datetime.datetime, datetime.datetime]:
    if not VALIDITY_DAYS_MIN <= days <= max_days:
        raise CertificateError(f"{what} validity {days} days is outside "
                               f"{VALIDITY_DAYS_MIN}..{max_days}")
    now = now or datetime.datetime.now(datetime.UTC)
    return (now - datetime.timedelta(seconds=CLOCK_SKEW_S), now + datetime.timedelta(days=days))


def san_entries(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """IP addresses as IPAddress entries, anything else as a DNS name; duplicates dropped."""
    out: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    if not 0 < len(out) <= SAN_ENTRIES_MAX:
        raise CertificateError(f"{len(out)} subject alternative names, 1 to {SAN_ENTRIES_MAX}")
    return out


class CertificateAuthority:
    """A self-signed CA that issues server (and client) certificates."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, common_name: str, *, validity_days: int = CA_VALIDITY_DAYS,
               now: datetime.datetime | None = None) -> CertificateAuthority:
        start, end = _bounds(now, validity_days, CA_VALIDITY_DAYS_MAX, "CA")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(common_name)
        public = key.public_key()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(public).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def issue(self, common_name: str, hosts: Iterable[str] = (), *, server: bool = True,
              validity_days: int = SERVER_CERT_VALIDITY_DAYS,
              now: datetime.datetime | None = None) -> Issued:
        """A certificate for `common_name`: a server certificate for `hosts` (its subject
        alternative names: IP addresses and DNS names), or a client certificate. `now` moves
        the validity window (an expired certificate for tests: a `now` long past). It never
        outlasts the CA."""
        start, end = _bounds(now, validity_days, SERVER_CERT_VALIDITY_DAYS_MAX, "certificate")
        end = min(end, self.cert.not_valid_after_utc)
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(_name(common_name))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH if server
                        else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.key.public_key()), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(san_entries(hosts)),
                                            critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def server_hosts(*addresses: str) -> list[str]:
    """The subject alternative names for a node's RPC that listens on or is dialled at
    `addresses` (IPv4 literals): each specific address, and 127.0.0.1 and `localhost` when one is
    a loopback address or 0.0.0.0 (every interface, loopback included), so that a client on the
    node's own host can use either name."""
    out: list[str] = []
    loopback = False
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.is_unspecified or ip.is_loopback:
            loopback = True
        if not ip.is_unspecified:
            out.append(address)
    if loopback:
        out += ["127.0.0.1", "localhost"]
    return list(dict.fromkeys(out))
