"""Signing keys: every kind CHeKT issues is read, every kind of bad key gets a clear error."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
import jwt
import pytest

from custom_components.chekt.api import ChektKeyError, KeyProblem, SigningAlgorithm, SigningKey

from .keys import ec_key, private_pem, public_pem, rsa_key

AUDIENCE = "https://auth.example.test/"


def _claims(token: str, key: object, algorithm: str) -> dict[str, object]:
    return jwt.decode(token, key, algorithms=[algorithm], audience=AUDIENCE)  # type: ignore[arg-type]


def test_shared_secret_signs_hs256() -> None:
    key = SigningKey.parse("  s3cret-value-that-is-long-enough-for-hs256  ", key_id=" kid-1 ")
    assert key.algorithm is SigningAlgorithm.HS256
    token = key.make_assertion(client_id="client-1", audience=AUDIENCE)
    assert jwt.get_unverified_header(token)["kid"] == "kid-1"
    claims = _claims(token, "s3cret-value-that-is-long-enough-for-hs256", "HS256")
    assert claims["iss"] == claims["sub"] == "client-1"
    assert 0 < int(claims["exp"]) - int(claims["iat"]) <= 300  # type: ignore[call-overload]


def test_every_assertion_has_a_fresh_jti() -> None:
    key = SigningKey.parse("secret-that-is-long-enough-for-hs256-signing")
    tokens = {key.make_assertion(client_id="c", audience=AUDIENCE, now=1000.0) for _ in range(3)}
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 3


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_rsa_pem_signs_rs256(fmt: serialization.PrivateFormat) -> None:
    key = SigningKey.parse(private_pem(rsa_key(), fmt))
    assert key.algorithm is SigningAlgorithm.RS256
    assert key.key_id is None
    token = key.make_assertion(client_id="c", audience=AUDIENCE)
    assert "kid" not in jwt.get_unverified_header(token)
    assert _claims(token, public_pem(rsa_key()), "RS256")["sub"] == "c"


def test_ec_pem_signs_es256() -> None:
    key = SigningKey.parse(private_pem(ec_key()), key_id="ec-1")
    assert key.algorithm is SigningAlgorithm.ES256
    token = key.make_assertion(client_id="c", audience=AUDIENCE)
    assert _claims(token, public_pem(ec_key()), "ES256")["iss"] == "c"


def test_openssh_private_key_is_read() -> None:
    text = private_pem(ec_key(), serialization.PrivateFormat.OpenSSH)
    assert SigningKey.parse(text).algorithm is SigningAlgorithm.ES256


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda pem: pem.replace("\n", "\\n"), id="escaped newlines"),
        pytest.param(lambda pem: pem.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda pem: pem.replace("\n", " "), id="one line"),
        pytest.param(lambda pem: "\n  " + pem.replace("\n", "\n    ") + "\n\n", id="indented"),
    ],
)
def test_odd_pem_layouts_are_repaired(mangle: object) -> None:
    pem = private_pem(rsa_key())
    key = SigningKey.parse(mangle(pem))  # type: ignore[operator]
    assert key.algorithm is SigningAlgorithm.RS256


def test_repr_never_shows_the_key() -> None:
    secret = "super-secret-value"
    assert secret not in repr(SigningKey.parse(secret))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("", KeyProblem.EMPTY, id="empty"),
        pytest.param("   \n ", KeyProblem.EMPTY, id="blank"),
        pytest.param(
            "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----",
            KeyProblem.UNPARSEABLE,
            id="garbage body",
        ),
        pytest.param("-----BEGIN PRIVATE KEY-----\nMIIB", KeyProblem.UNPARSEABLE, id="truncated"),
        pytest.param("ssh-ed25519 AAAAC3Nza user@host", KeyProblem.PUBLIC_KEY, id="ssh public key"),
    ],
)
def test_bad_keys_are_named(text: str, problem: KeyProblem) -> None:
    with pytest.raises(ChektKeyError) as caught:
        SigningKey.parse(text)
    assert caught.value.problem is problem


def test_encrypted_pkcs8_key_is_refused() -> None:
    pem = private_pem(rsa_key(), password=b"passphrase")
    with pytest.raises(ChektKeyError) as caught:
        SigningKey.parse(pem)
    assert caught.value.problem is KeyProblem.ENCRYPTED


def test_encrypted_openssh_key_is_refused() -> None:
    pem = private_pem(ec_key(), serialization.PrivateFormat.OpenSSH, password=b"passphrase")
    with pytest.raises(ChektKeyError) as caught:
        SigningKey.parse(pem)
    assert caught.value.problem is KeyProblem.ENCRYPTED


def test_public_key_where_private_belongs_is_refused() -> None:
    with pytest.raises(ChektKeyError) as caught:
        SigningKey.parse(public_pem(rsa_key()))
    assert caught.value.problem is KeyProblem.PUBLIC_KEY
    assert "private key" in str(caught.value)


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(lambda: private_pem(ed25519.Ed25519PrivateKey.generate()), id="ed25519"),
        pytest.param(lambda: private_pem(ec_key("secp384r1")), id="p-384"),
        pytest.param(lambda: private_pem(rsa_key(1024)), id="rsa-1024"),
    ],
)
def test_unsupported_keys_are_refused(pem: object) -> None:
    with pytest.raises(ChektKeyError) as caught:
        SigningKey.parse(pem())  # type: ignore[operator]
    assert caught.value.problem is KeyProblem.UNSUPPORTED
