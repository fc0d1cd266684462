"""Bearer JWT authentication, roles, scopes and unit scoping.

Tokens are verified against the ministry identity provider's JWKS (production) or a local RS256 dev
key pair created under PENA_HOME/keys (dev and tests; production settings refuse it). Only the
configured algorithms are accepted; `exp`, `aud` and `iss` are required and checked.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, Request

from pena.problems import Problem
from pena.ratelimit import RateLimiter
from pena.settings import Settings, get_settings

ROLE_SCOPES: dict[str, set[str]] = {
    "admin": {
        "participants:read",
        "participants:write",
        "participants:read_nik",
        "participants:erase",
        "participants:export",  # bulk personal data: admins only (exports are audited per subject)
        "training:read",
        "training:write",
        "training:admin",
        "monev:read",
        "monev:assign",
        "monev:submit",
        "graduation:read",
        "graduation:verify",
        "graduation:decide",
        "graduation:appeal",
        "graduation:policy",
        "audit:read",
        "ops:deadletters",
        "ops:clock",
    },
    "centre_operator": {"participants:read", "training:read", "training:write"},
    "facilitator": {"participants:read", "monev:read", "monev:submit", "graduation:read", "graduation:appeal"},
    "verifier": {"participants:read", "monev:read", "graduation:read", "graduation:verify"},
    "approver": {"participants:read", "monev:read", "graduation:read", "graduation:decide"},
    "integrator": {"participants:read", "participants:write", "training:read", "monev:read", "graduation:read"},
}
ROLES = tuple(ROLE_SCOPES)


@dataclass(frozen=True)
class Principal:
    subject: str
    client_id: str | None
    roles: frozenset[str]
    scopes: frozenset[str]
    unit: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def require(self, *scopes: str) -> None:
        missing = [s for s in scopes if s not in self.scopes]
        if missing:
            raise Problem(403, "Forbidden", f"this action needs scope {', '.join(missing)}", type_="forbidden")


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, type_="unauthorized", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def dev_key_dir(settings: Settings) -> Path:
    if settings.dev_key_dir:
        return Path(settings.dev_key_dir)
    from pena.home import pena_home

    return pena_home() / "keys"


def dev_private_key(settings: Settings) -> bytes:
    """The local signing key, created on first use. Never used in production."""
    folder = dev_key_dir(settings)
    path = folder / "dev_jwt_private.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(path)  # atomic: concurrent first uses agree on one key
    return path.read_bytes()


@lru_cache(maxsize=4)
def _dev_public_key(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, password=None).public_key()


def issue_dev_token(
    settings: Settings,
    *,
    role: str,
    sub: str | None = None,
    unit: str | None = None,
    scopes: list[str] | None = None,
    ttl_seconds: int = 3600,
    client_id: str | None = None,
) -> str:
    if settings.environment == "production":
        raise RuntimeError("production settings refuse the local dev key")
    if role not in ROLE_SCOPES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": sub or f"dev-{role}",
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "roles": [role],
        "client_id": client_id or sub or f"dev-{role}",
    }
    if unit:
        claims["unit"] = unit
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, dev_private_key(settings), algorithm="RS256", headers={"kid": "pena-dev"})


class TokenVerifier:
    CACHE_SIZE = 10_000

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True) if settings.jwks_url else None
        # a client sends the same token for many requests: the signature check of a token string
        # is done once and its principal kept until the token's own expiry
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if time.time() < expires:
                return principal
            del self._verified[token]
        principal = self._verify_signature(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, float(principal.claims["exp"]))
        return principal

    def _key(self, token: str) -> Any:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        return _dev_public_key(dev_private_key(self.settings))

    def _verify_signature(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=self.settings.jwt_algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise _unauthorized("token audience is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise _unauthorized("token issuer is not accepted") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {type(exc).__name__}") from exc
        roles = frozenset(r for r in claims.get("roles", []) if r in ROLE_SCOPES)
        scopes: set[str] = set()
        for role in roles:
            scopes |= ROLE_SCOPES[role]
        if claims.get("scope"):
            # explicit scopes narrow the role's scopes (a client may ask for less, never more)
            asked = set(str(claims["scope"]).split())
            scopes = scopes & asked if roles else set()
        return Principal(
            subject=str(claims["sub"]),
            client_id=claims.get("client_id") or claims.get("azp"),
            roles=roles,
            scopes=frozenset(scopes),
            unit=claims.get("unit"),
            claims=claims,
        )


def get_verifier(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        verifier = request.app.state.token_verifier = TokenVerifier(
            getattr(request.app.state, "settings", None) or get_settings()
        )
    return verifier


def get_rate_limiter(request: Request) -> RateLimiter:
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        settings = getattr(request.app.state, "settings", None) or get_settings()
        limiter = request.app.state.rate_limiter = RateLimiter(
            settings.rate_limit_per_minute, max_subjects=settings.rate_limit_max_subjects
        )
    return limiter


async def authenticated(request: Request) -> Principal:
    """The verified caller; its requests are rate-limited per (subject, client id) (429 above)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required")
    principal = get_verifier(request).verify(token.strip())
    get_rate_limiter(request).hit(principal.subject, principal.client_id or "")
    request.state.principal = principal
    return principal


def require(*scopes: str) -> Any:
    """Dependency: an authenticated principal holding every scope given."""

    async def dependency(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        principal.require(*scopes)
        return principal

    return dependency
