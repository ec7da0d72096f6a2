"""A small token server for Distribution's ``auth.token`` mode, for tests.

Distribution verifies RS256 JWTs whose ``x5c`` header carries a certificate found in its
``rootcertbundle``; this issuer generates such a key pair, checks Basic credentials, and grants
the requested scopes (``type:name:actions``), so the client's real Bearer flow is exercised
end to end. Knobs let tests make tokens expire mid-run, deny the catalog, answer
``access_token`` instead of ``token``, and inspect every request it served.

Distribution accepts ``exp`` up to 60 s in the past (``Leeway``): to make a token stop working
``n`` seconds after it was issued, use ``lifetime = n - REGISTRY_LEEWAY``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from testbed.registry_server import TokenAuth
from testbed.servers import BackgroundHTTPServer

REGISTRY_LEEWAY = 60  # seconds Distribution 2.8 tolerates past exp / before nbf

Grant = Callable[[str | None, str, str, list[str]], list[str]]


@dataclass(frozen=True)
class TokenRequest:
    subject: str | None  # None for an anonymous request
    service: str
    scopes: tuple[str, ...]
    status: int


def grant_everything(subject: str | None, type_: str, name: str, actions: list[str]) -> list[str]:
    """Authenticated users get what they ask for; anonymous callers may only pull."""
    return actions if subject else [a for a in actions if a == "pull"]


@dataclass
class TokenIssuer:
    """Serve ``GET /token?service=…&scope=…`` on loopback; see the module docstring."""

    users: dict[str, str] = field(default_factory=dict)
    service: str = "kitgc-test-registry"
    issuer: str = "kitgc-test-issuer"
    expires_in: int = 300  # what the answer says
    lifetime: float | None = None  # seconds until the JWT's exp; None = expires_in
    allow_anonymous: bool = True
    deny_catalog: bool = False
    response_field: str = "token"  # or "access_token"
    include_expires_in: bool = True
    grant: Grant = grant_everything
    requests: list[TokenRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kitgc test token issuer")])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        self._lock = threading.Lock()
        self._http: BackgroundHTTPServer | None = None
        self.cert_file = ""

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, directory: str | Path) -> TokenIssuer:
        path = Path(directory) / "token-issuer.pem"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file = str(path)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = issuer._handle(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="kitgc-token"')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._http = BackgroundHTTPServer(Handler, name="token-issuer")
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None

    @property
    def realm(self) -> str:
        assert self._http is not None, "start() the issuer first"
        return f"{self._http.url}/token"

    def token_auth(self) -> TokenAuth:
        """The registry's ``auth.token`` settings that trust this issuer."""
        return TokenAuth(realm=self.realm, service=self.service, issuer=self.issuer,
                         rootcertbundle=self.cert_file)

    def reset(self) -> None:
        """Back to defaults between tests sharing one issuer; forget the request log."""
        with self._lock:
            self.expires_in, self.lifetime = 300, None
            self.deny_catalog, self.response_field, self.include_expires_in = False, "token", True
            self.grant = grant_everything
            self.requests.clear()
            self.issued.clear()

    def scopes_requested(self) -> list[str]:
        return [s for r in self.requests for s in r.scopes]

    # --- the token endpoint ------------------------------------------------------------

    def _subject(self, authorization: str | None) -> tuple[bool, str | None]:
        """(acceptable, subject): wrong credentials are refused, none means anonymous."""
        if not authorization:
            return self.allow_anonymous, None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False, None
        return (self.users.get(user) == password and user in self.users), user

    def _handle(self, raw_path: str, authorization: str | None) -> tuple[int, dict[str, object]]:
        query = parse_qs(urlsplit(raw_path).query)
        service = (query.get("service") or [""])[0]
        scopes = tuple(query.get("scope", []))
        ok, subject = self._subject(authorization)
        with self._lock:
            if not ok or service != self.service:
                self.requests.append(TokenRequest(subject, service, scopes, 401))
                return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
            access = []
            for scope in scopes:
                type_, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                if type_ == "registry" and self.deny_catalog:
                    continue
                granted = self.grant(subject, type_, name, [a for a in actions.split(",") if a])
                if granted:
                    access.append({"type": type_, "name": name, "actions": granted})
            now = int(time.time())
            lifetime = self.expires_in if self.lifetime is None else self.lifetime
            claims = {
                "iss": self.issuer, "sub": subject or "", "aud": self.service,
                "exp": now + int(lifetime), "nbf": now - 5, "iat": now, "jti": uuid.uuid4().hex,
                "access": access,
            }
            token = jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": [self._x5c]})
            self.requests.append(TokenRequest(subject, service, scopes, 200))
            self.issued.append(token)
            body: dict[str, object] = {self.response_field: token,
                                       "issued_at": dt.datetime.now(dt.UTC).isoformat()}
            if self.include_expires_in:
                body["expires_in"] = self.expires_in
            return 200, body
