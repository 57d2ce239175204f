"""The JWT client assertion (RFC 7523) and the key that signs it.

One `signing_key` setting covers every key CHeKT issues: a PEM private key means RS256 (RSA) or ES256
(EC P-256); anything else is the M2M shared secret, which signs with HS256.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import re
import time
import uuid
import warnings

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
import jwt
from jwt.warnings import InsecureKeyLengthWarning

from .errors import ChektKeyError, KeyProblem

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Short-lived on purpose: an assertion is used once, right after it is made.
ASSERTION_LIFETIME = 300
MIN_RSA_BITS = 2048

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_HEADER_LINE = re.compile(r"^[A-Za-z-]+:.*$", re.MULTILINE)


class SigningAlgorithm(StrEnum):
    """The JWS algorithms the assertion can be signed with."""

    HS256 = "HS256"
    RS256 = "RS256"
    ES256 = "ES256"


type PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A parsed, ready-to-sign key. Build it with `SigningKey.parse`; its repr never shows the key."""

    algorithm: SigningAlgorithm
    key: str | PrivateKey = field(repr=False)
    key_id: str | None = None

    @classmethod
    def parse(cls, text: str, key_id: str | None = None) -> SigningKey:
        """Read a shared secret or a PEM private key, or raise `ChektKeyError` saying what is wrong with it.

        Parsing an RSA key costs milliseconds of CPU: call this from an executor inside an event loop.
        """
        key_id = key_id.strip() if key_id and key_id.strip() else None
        text = _unescape(text).strip()
        if not text:
            raise ChektKeyError(KeyProblem.EMPTY, "the signing key is empty")
        if "-----BEGIN" in text or text.startswith(("ssh-", "ecdsa-")):
            private_key = _load_private_key(text)
            return cls(_algorithm_for(private_key), private_key, key_id)
        return cls(SigningAlgorithm.HS256, text, key_id)

    def make_assertion(self, *, client_id: str, audience: str, now: float | None = None) -> str:
        """A fresh signed assertion: `iss` = `sub` = client id, a short `exp` and a new `jti` every time."""
        issued_at = int(time.time() if now is None else now)
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.key_id} if self.key_id else None
        with warnings.catch_warnings():
            # CHeKT, not the user, chooses the shared secret's length: a warning per token helps nobody.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(claims, self.key, algorithm=self.algorithm.value, headers=headers)


def _unescape(text: str) -> str:
    r"""Undo the usual damage of copying a key through JSON or a one-line field: literal `\\n` and CRLF."""
    return text.replace("\\r", "").replace("\\n", "\n").replace("\r\n", "\n").replace("\r", "\n")


def _normalise_pem(text: str) -> bytes:
    """Re-wrap a PEM block whose line breaks were lost or mangled (pasted on one line, indented, ...)."""
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise ChektKeyError(KeyProblem.UNPARSEABLE, "the signing key looks like PEM but has no complete block")
    label, body = match.group(1), match.group(2)
    if "ENCRYPTED" in label or "ENCRYPTED" in body:
        raise ChektKeyError(KeyProblem.ENCRYPTED, "the signing key is encrypted; export it without a passphrase")
    if "PUBLIC KEY" in label or "CERTIFICATE" in label:
        raise ChektKeyError(KeyProblem.PUBLIC_KEY, "this is a public key or certificate; paste the private key instead")
    base64_text = "".join(_PEM_HEADER_LINE.sub("", body).split())
    lines = [base64_text[start : start + 64] for start in range(0, len(base64_text), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()


def _load_private_key(text: str) -> PrivateKey:
    if text.startswith(("ssh-", "ecdsa-")):
        raise ChektKeyError(KeyProblem.PUBLIC_KEY, "this is an SSH public key; paste the PEM private key instead")
    pem = _normalise_pem(text)
    loaded: object
    try:
        if b"OPENSSH PRIVATE KEY" in pem:
            loaded = serialization.load_ssh_private_key(pem, password=None)
        else:
            loaded = serialization.load_pem_private_key(pem, password=None)
    except TypeError as err:
        # cryptography says "password was not given but private key is encrypted" this way.
        raise ChektKeyError(
            KeyProblem.ENCRYPTED, "the signing key is encrypted; export it without a passphrase"
        ) from err
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ChektKeyError(KeyProblem.UNPARSEABLE, "the signing key is not a readable PEM private key") from err
    if isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return loaded
    raise ChektKeyError(KeyProblem.UNSUPPORTED, "only RSA and EC (P-256) private keys can sign CHeKT assertions")


def _algorithm_for(key: PrivateKey) -> SigningAlgorithm:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ChektKeyError(
                KeyProblem.UNSUPPORTED,
                f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed",
            )
        return SigningAlgorithm.RS256
    if not isinstance(key.curve, ec.SECP256R1):
        raise ChektKeyError(KeyProblem.UNSUPPORTED, f"the EC key is on {key.curve.name}; ES256 needs the P-256 curve")
    return SigningAlgorithm.ES256
