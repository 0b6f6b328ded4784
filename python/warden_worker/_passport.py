"""Verifying Warden call passports with PyJWT."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import jwt

HEADER_KEY = "warden-passport"
TYPE = "warden-passport+jwt"
_ALGORITHMS = {"OKP": "EdDSA", "EC": "ES256", "oct": "HS256"}


class Refusal(Exception):
    """Why a passport was refused; the message names what failed, never the passport."""


@dataclass(frozen=True)
class Binding:
    """What a call is: the passport must have been issued for exactly this."""

    namespace: str
    workflow_id: str
    kind: str  # "execute", "signal", "query" or "update"
    name: str | None = None


@dataclass(frozen=True)
class Passport:
    """A verified passport: the caller, as the edge forwarded them, and what for."""

    issuer: str
    key_id: str
    subject: str | None
    claims: Mapping[str, Any]
    binding: Binding
    start: bool
    issued_at: int
    expires_at: int


@dataclass
class _Key:
    algorithm: str
    key: Any
    retired_at: int | None = None


@dataclass
class PassportVerifier:
    """Verifies passports against trusted keys (a JWKS, as ``warden proxy`` serves it).

    ``retired`` maps a key id to the time (Unix seconds) it was retired: passports it signed
    before then still verify, so recorded histories replay as they first ran.
    """

    jwks: Mapping[str, Any]
    issuers: list[str]
    leeway: int = 5
    retired: Mapping[str, int] = field(default_factory=dict)
    _keys: dict[str, _Key] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._keys = {}
        for entry in self.jwks.get("keys", []):
            kid = entry.get("kid")
            if not kid:
                raise ValueError("a trusted key needs a `kid`")
            if kid in self._keys:
                raise ValueError(f"two trusted keys have the key id `{kid}`")
            algorithm = _ALGORITHMS.get(entry.get("kty"))
            if algorithm is None:
                raise ValueError(f"JWK `{kid}`: only Ed25519, P-256 and oct keys")
            key = jwt.PyJWK.from_dict(entry, algorithm=algorithm).key
            self._keys[kid] = _Key(algorithm, key, self.retired.get(kid))
        unknown = set(self.retired) - set(self._keys)
        if unknown:
            raise ValueError(f"no trusted key has the key id `{sorted(unknown)[0]}`")

    def verify(self, token: str | None, expected: Binding, now: int | None) -> Passport:
        """Verifies ``token`` for the call ``expected`` at ``now`` (Unix seconds; a workflow
        passes its own time). ``now=None`` skips the lifetime, for an activity checked long
        after its workflow started. Raises :class:`Refusal`."""
        if token is None:
            raise Refusal("no passport: the call did not come through Warden")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Refusal("malformed passport: not a compact JWS") from None
        if header.get("typ") != TYPE:
            raise Refusal(f"malformed passport: `typ` is not {TYPE}")
        kid = header.get("kid")
        trusted = self._keys.get(kid) if isinstance(kid, str) else None
        if trusted is None:
            raise Refusal(f"passport signed by an untrusted key `{kid}`")
        if header.get("alg") != trusted.algorithm:
            raise Refusal(f"passport algorithm {header.get('alg')} does not match key `{kid}`")
        try:
            claims = jwt.decode(
                token,
                trusted.key,
                algorithms=[trusted.algorithm],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.InvalidSignatureError:
            raise Refusal("passport signature does not verify (forged or tampered)") from None
        except jwt.PyJWTError as error:
            raise Refusal(f"malformed passport: {error}") from None
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise Refusal("malformed passport: `iat` and `exp` must be integers")
        if trusted.retired_at is not None and iat >= trusted.retired_at:
            raise Refusal(
                f"passport signed by key `{kid}` at {iat}, after the key was retired at {trusted.retired_at}"
            )
        if claims.get("iss") not in self.issuers:
            raise Refusal(f"passport issued by `{claims.get('iss')}`, which is not trusted")
        if now is not None:
            if iat > now + self.leeway:
                raise Refusal(f"passport issued at {iat}, after now ({now})")
            if now >= exp + self.leeway:
                raise Refusal(f"passport expired at {exp} (now {now})")
        op = claims.get("op")
        if not isinstance(op, dict):
            raise Refusal("malformed passport: no `op`")
        issued = Binding(op.get("ns", ""), op.get("wid", ""), op.get("kind", ""), op.get("name"))
        start = op.get("start") is True
        _check_binding(issued, start, expected)
        return Passport(
            issuer=claims["iss"],
            key_id=kid,
            subject=claims.get("sub"),
            claims=claims.get("cl") or {},
            binding=issued,
            start=start,
            issued_at=iat,
            expires_at=exp,
        )


def _check_binding(issued: Binding, start: bool, call: Binding) -> None:
    def differs(what: str, was: Any, wanted: Any) -> Refusal:
        return Refusal(
            f"passport issued for another call: {what} is `{was}`, the call's is `{wanted}`"
        )

    if issued.namespace != call.namespace:
        raise differs("namespace", issued.namespace, call.namespace)
    if issued.workflow_id != call.workflow_id:
        raise differs("workflow id", issued.workflow_id, call.workflow_id)
    # A signal-with-start's passport admits the start it carries.
    if call.kind == "execute" and start:
        return
    if issued.kind != call.kind:
        raise differs("kind", issued.kind, call.kind)
    if issued.name != call.name:
        raise differs("name", issued.name or "(none)", call.name or "(none)")


def passport_in(headers: Mapping[str, Any], key: str) -> str | None:
    """The passport under ``key`` in a Temporal header, as text."""
    payload = headers.get(key)
    if payload is None:
        return None
    try:
        return payload.data.decode("ascii")
    except UnicodeDecodeError:
        return None
