"""`crossbill network init` and the devnet give a test network TLS (ADR 0023, "Test networks"):
a consortium CA, a server certificate per node for its RPC addresses, node.toml naming them;
`--no-tls` or `[tls] enabled = false` writes none. The certificates are checked the way a client
uses them: an in-memory TLS handshake between the node's server context (node/tls.py, from the
written files) and a client context that trusts the written CA."""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from node import certs, tls
from node.cli.netgen import CLIENT_KEY_NAME, generate_network
from node.config import load_config
from tests.ops.test_network_init import SCRYPT, crossbill, description, write_description

HANDSHAKE_ROUNDS_MAX = 10


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake over memory buffers; raises what the client's verification raises."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    done = {"client": False, "server": False}
    for _ in range(HANDSHAKE_ROUNDS_MAX):
        for name, end in (("client", cli), ("server", srv)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError(f"no handshake in {HANDSHAKE_ROUNDS_MAX} rounds: {done}")


def sans(cert: x509.Certificate) -> set[str]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ({str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
            | set(names.get_values_for_type(x509.DNSName)))


def days(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - cert.not_valid_before_utc) / datetime.timedelta(days=1)


def test_init_makes_a_ca_and_a_certificate_per_node_for_its_rpc_addresses(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = description(host="10.0.0.11")
    raw["institution"][1]["rpc_listen_host"] = "10.0.0.11"  # bank.beta opens its API
    raw["institution"][2]["host"] = "10.0.0.12"
    raw["institution"][2]["rpc_listen_host"] = "0.0.0.0"  # the regulator: every interface
    out = tmp_path / "out"
    assert crossbill("network", "init", str(write_description(tmp_path, raw)), "--out",
                     str(out), "--scrypt-log-n", SCRYPT) == 0
    capsys.readouterr()

    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    assert ca.subject == ca.issuer
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    assert round(days(ca)) == certs.CA_VALIDITY_DAYS
    assert (out / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    trusting = tls.client_context(out / "ca.pem")
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(certs.CertificateAuthority.create("other").cert_pem)
    stranger = tls.client_context(other_ca)

    expected = {
        "bank.alpha": {"10.0.0.11", "127.0.0.1", "localhost"},  # RPC on loopback (default)
        "bank.beta": {"10.0.0.11"},                             # RPC on the LAN address only
        "regulator.safe-qd": {"10.0.0.12", "127.0.0.1", "localhost"},
        "customs.qd": {"10.0.0.11", "127.0.0.1", "localhost"},
    }
    for inst, names in expected.items():
        d = out / inst
        cfg = load_config(d / "node.toml")
        assert (cfg.rpc.tls_cert_file, cfg.rpc.tls_key_file) == (d / "rpc-cert.pem",
                                                                 d / "rpc-key.pem")
        assert (d / "rpc-key.pem").stat().st_mode & 0o777 == 0o600
        assert (d / "ca.pem").read_bytes() == (out / "ca.pem").read_bytes()
        cert = x509.load_pem_x509_certificate((d / "rpc-cert.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == inst
        assert sans(cert) == names, inst
        assert round(days(cert)) == certs.SERVER_CERT_VALIDITY_DAYS
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

        server = tls.server_context(cfg.rpc.tls_cert_file, cfg.rpc.tls_key_file)
        for name in names:  # every name a client may dial verifies
            handshake(server, trusting, name)
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            handshake(server, trusting, "10.0.0.99")
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            handshake(server, stranger, sorted(names)[0])


def test_validity_is_configurable_in_the_description(tmp_path: pathlib.Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    raw = description()
    raw["tls"] = {"ca_validity_days": 30, "server_cert_validity_days": 7}
    out = tmp_path / "out"
    assert crossbill("network", "init", str(write_description(tmp_path, raw)), "--out",
                     str(out), "--scrypt-log-n", SCRYPT) == 0
    capsys.readouterr()
    assert round(days(x509.load_pem_x509_certificate((out / "ca.pem").read_bytes()))) == 30
    node = x509.load_pem_x509_certificate((out / "bank.alpha" / "rpc-cert.pem").read_bytes())
    assert round(days(node)) == 7


@pytest.mark.parametrize("how", ["--no-tls", "description"])
def test_no_tls_writes_no_ca_and_no_certificates(tmp_path: pathlib.Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 how: str) -> None:
    raw = description()
    flags = ["--no-tls"] if how == "--no-tls" else []
    if how == "description":
        raw["tls"] = {"enabled": False}
    out = tmp_path / "out"
    assert crossbill("network", "init", str(write_description(tmp_path, raw)), "--out",
                     str(out), "--scrypt-log-n", SCRYPT, *flags) == 0
    printed = capsys.readouterr().out
    assert "TLS: off" in printed and "https://" not in printed
    assert sorted(p.name for p in out.rglob("*.pem")) == []
    for i, inst in enumerate(raw["institution"], start=1):
        d = out / inst["id"]
        assert "tls_" not in (d / "node.toml").read_text()
        cfg = load_config(d / "node.toml")
        assert cfg.rpc.tls_cert_file is None and cfg.rpc.tls_key_file is None
        assert f"rpc http://127.0.0.1:{7200 + i}" in printed


def test_devnet_generates_tls_by_default_and_not_when_asked(tmp_path: pathlib.Path) -> None:
    _, nodes = generate_network(tmp_path / "tls", base_port=7100)
    root = tmp_path / "tls"
    ca = x509.load_pem_x509_certificate((root / "ca.pem").read_bytes())
    assert (root / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    for n in nodes:
        assert n.ca_file == root / "ca.pem" and n.rpc_url.startswith("https://127.0.0.1:")
        cert = x509.load_pem_x509_certificate((n.dir / "rpc-cert.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert sans(cert) == {"127.0.0.1", "localhost"}
        assert (n.dir / "rpc-key.pem").stat().st_mode & 0o777 == 0o600
        assert not (n.dir / "ca.pem").exists()  # one CA file for the devnet: ROOT/ca.pem

    _, plain = generate_network(tmp_path / "plain", base_port=7100, tls=False)
    # no certificate and no TLS key; each node's RPC client key (PKCS#8 PEM) remains
    assert {p.name for p in (tmp_path / "plain").rglob("*.pem")} == {CLIENT_KEY_NAME}
    assert all(n.ca_file is None and n.rpc_url.startswith("http://") for n in plain)


def test_certificate_bounds_are_enforced() -> None:
    ca = certs.CertificateAuthority.create("bounds", validity_days=10)
    with pytest.raises(certs.CertificateError, match=r"outside 1\.\.7300"):
        certs.CertificateAuthority.create("x", validity_days=certs.CA_VALIDITY_DAYS_MAX + 1)
    with pytest.raises(certs.CertificateError, match=r"outside 1\.\.3650"):
        ca.issue("n", ["127.0.0.1"], validity_days=0)
    with pytest.raises(certs.CertificateError, match="1 to 64 characters"):
        ca.issue("n" * 65, ["127.0.0.1"])
    with pytest.raises(certs.CertificateError, match="subject alternative names"):
        ca.issue("n", [str(ipaddress.IPv4Address(0x0A000001 + i)) for i in range(17)])
    with pytest.raises(certs.CertificateError, match="subject alternative names"):
        ca.issue("n", [])
    # a node certificate never outlives its CA
    long = x509.load_pem_x509_certificate(ca.issue("n", ["127.0.0.1"], validity_days=100)
                                          .cert_pem)
    assert long.not_valid_after_utc == ca.cert.not_valid_after_utc
