"""The node's bounds and component rules for RFC 9421 request signatures (ADR 0033), beyond
the cases of docs/vectors/client-auth.json: every refusal names its rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.rpc import auth
from protocol import crypto
from tests.rpc import auth_vectors as V


def check(request: dict[str, Any], query: str = "", scheme: str = "http") -> str | None:
    node = auth.ClientAuth({V.CLIENT: crypto.PrivateKey(V.SEED).public_key},
                           lambda: V.NODE_CLOCK_MS, V.AUDIENCE)
    return node.verify_request(auth.HttpMessage(
        request["method"], request["path"],
        {k.lower().encode(): v.encode() for k, v in request["headers"].items()},
        request["body"].encode(), query, scheme))


def refused(request: dict[str, Any], **kw: Any) -> auth.AuthError:
    with pytest.raises(auth.AuthError) as err:
        check(request, **kw)
    assert err.value.reason
    return err.value


def with_header(request: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    return {**request, "headers": {**request["headers"], name: value}}


def test_every_header_is_bounded_before_it_is_parsed() -> None:
    valid = V.signed()
    for name, bound in (("Signature-Input", auth.SIGNATURE_INPUT_BYTES_MAX),
                        ("Signature", auth.SIGNATURE_HEADER_BYTES_MAX),
                        ("Content-Digest", auth.CONTENT_DIGEST_BYTES_MAX)):
        long = valid["headers"][name] + " " * (bound + 1 - len(valid["headers"][name]))
        err = refused(with_header(valid, name, long))
        assert (err.rule, f"{name} header longer than {bound} bytes") == (
            "malformed", err.reason)


def test_members_components_labels_and_parameters_are_bounded() -> None:
    many = tuple(f"x-h{i}" for i in range(auth.SIGNATURE_COMPONENTS_MAX))
    headers = {f"X-H{i}": "v" for i in range(auth.SIGNATURE_COMPONENTS_MAX)}
    err = refused(V.signed(components=(*V.credentials.REQUIRED_COMPONENTS, *many),
                           headers=headers))
    assert err.rule == "malformed" and "components" in err.reason
    label = "l" * (auth.SIGNATURE_LABEL_CHARS_MAX + 1)
    valid = V.signed()
    relabelled = {**valid, "headers": {**valid["headers"], **{
        name: valid["headers"][name].replace("crossbill=", f"{label}=")
        for name in ("Signature-Input", "Signature")}}}
    assert refused(relabelled).rule == "malformed"
    err = refused(V.signed(extra=[("note", "n" * (auth.SIGNATURE_PARAM_CHARS_MAX + 1))]))
    assert err.rule == "malformed" and "'note'" in err.reason
    err = refused(V.signed(extra=[(f"p{i}", i) for i in range(auth.SIGNATURE_PARAMS_MAX)]))
    assert err.rule == "malformed" and "parameters" in err.reason
    err = refused(V.signed(nonce="ab" * (auth.NONCE_HEX_CHARS_MAX // 2 + 1)))
    assert err.rule == "malformed" and "nonce" in err.reason


def test_malformed_and_unsupported_inputs_name_their_rule() -> None:
    valid = V.signed()
    no_signature = {**valid, "headers": {k: v for k, v in valid["headers"].items()
                                         if k != "Signature"}}
    assert refused(no_signature).rule == "malformed"
    assert refused(with_header(valid, "Signature", valid["headers"]["Signature"].replace(
        "crossbill=", "other="))).rule == "malformed"
    assert refused(with_header(valid, "Signature-Input", valid["headers"][
        "Signature-Input"].replace(";created=", ";created=\"1\";x="))).rule == "malformed"
    assert refused(with_header(valid, "Content-Digest", "md5=:AAAA:")).rule == "malformed"
    assert refused(V.signed(components=("@method", "@path", "content-digest", "@query-param"),
                            derived={"@query-param": "x"})).rule == "unsupported-component"
    sf = with_header(valid, "Signature-Input", valid["headers"]["Signature-Input"].replace(
        '"content-digest"', '"content-digest";sf'))
    assert refused(sf).rule == "unsupported-component"
    assert refused(V.signed(components=("@method", "@path", "content-digest", "x-absent"),
                            derived={"x-absent": "x"})).rule == "missing-component"


def test_derived_components_are_rebuilt_from_the_request() -> None:
    components = ("@method", "@path", "content-digest", "@authority", "@scheme",
                  "@target-uri", "@request-target", "@query", "content-type")
    headers = {"Host": "Node.Example:8545", "Content-Type": "application/json"}
    base_values = {"@authority": "node.example:8545", "@scheme": "https",
                   "@target-uri": "https://node.example:8545/?a=1",
                   "@request-target": "/?a=1", "@query": "?a=1"}
    request = V.signed(components=components, headers=headers, derived=base_values)
    assert check(request, query="a=1", scheme="https") == V.CLIENT
    assert refused(V.signed(components=components, headers=headers, derived=base_values,
                            nonce="fedcba9876543210"), query="a=2",
                   scheme="https").rule == "bad-signature"


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["Signature-Input", "Signature", "Content-Digest"]),
       at=st.integers(0, 400), cut=st.integers(0, 3),
       insert=st.binary(max_size=6) | st.sampled_from([b'"', b"(", b")", b";", b"=", b":",
                                                      b",", b"\\", b"\xff", b" "]))
def test_any_edit_of_a_header_is_refused_by_rule_never_by_a_crash(
        name: str, at: int, cut: int, insert: bytes) -> None:
    valid = V.signed()
    raw = valid["headers"][name].encode("latin-1")
    at = min(at, len(raw))
    edited = raw[:at] + insert + raw[at + cut:]
    node = auth.ClientAuth({V.CLIENT: crypto.PrivateKey(V.SEED).public_key},
                           lambda: V.NODE_CLOCK_MS, V.AUDIENCE)
    headers = {k.lower().encode(): v.encode() for k, v in valid["headers"].items()}
    message = auth.HttpMessage("POST", "/", {**headers, name.lower().encode(): edited},
                               valid["body"].encode())
    try:  # an edit that keeps the meaning (whitespace, an unknown extra member) may pass
        assert node.verify_request(message) == V.CLIENT
    except auth.AuthError as err:
        assert err.rule in RULES and err.reason


RULES = {"malformed", "missing-component", "unsupported-component", "missing-parameter",
         "algorithm", "unknown-client", "wrong-audience", "expired", "digest-mismatch",
         "bad-signature", "replayed", "retry-later"}
