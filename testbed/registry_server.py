"""Start and stop a real Distribution registry (``docker-registry serve``) on loopback.

Tests run against the real server rather than a fake because the registry's quirks (Accept
handling, Link paging, 405 UNSUPPORTED, token verification) are exactly what the collector
must get right. Each server gets its own temporary directory, config file and free port;
readiness is checked by polling ``/v2/`` (the process handling is :mod:`testbed.servers`').
Three flavours: plain HTTP, TLS with a generated self-signed CA plus htpasswd basic auth,
and ``auth.token`` against :mod:`testbed.token_issuer`.

``free_port`` is re-exported here because the benchmark, the demo and older tests import it
from this module.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testbed.servers import free_port, on_free_port, start_process, stop_process, wait_until_answers

__all__ = ["REGISTRY_BINARY", "RegistryServer", "TLSFiles", "TokenAuth", "free_port", "make_htpasswd", "make_tls",
           "registry_available", "start_registry", "write_docker_config"]

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@dataclass(frozen=True)
class TLSFiles:
    ca_file: str  # PEM of the CA clients must trust
    cert_file: str  # server certificate (signed by the CA) for 127.0.0.1 and localhost
    key_file: str


def make_tls(directory: str | Path) -> TLSFiles:
    """Generate a throw-away CA and a server certificate for loopback, as PEM files."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kitgc test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(str(d / "ca.pem"), str(d / "server.pem"), str(d / "server-key.pem"))
    Path(files.ca_file).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(files.key_file).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def make_htpasswd(path: str | Path, username: str, password: str) -> str:
    """Write a bcrypt htpasswd file with the real ``htpasswd`` tool (what Distribution reads)."""
    out = subprocess.run(
        ["htpasswd", "-Bbn", username, password], check=True, capture_output=True, text=True
    ).stdout
    Path(path).write_text(out.strip() + "\n")
    return str(path)


def write_docker_config(path: str | Path, host: str, username: str, password: str) -> str:
    """A ``.dockerconfigjson`` as a Kubernetes Secret would mount it."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    Path(path).write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return str(path)


@dataclass(frozen=True)
class TokenAuth:
    realm: str
    service: str
    issuer: str
    rootcertbundle: str  # PEM path of the issuer's signing certificate


@dataclass
class RegistryServer:
    """A running registry. ``address`` is host:port, ``url`` the base URL with scheme."""

    address: str
    url: str
    root: Path
    process: subprocess.Popen[bytes]
    ca_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    log_path: Path | None = None

    @property
    def insecure(self) -> bool:
        return self.url.startswith("http://")

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> RegistryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _config(
    root: Path, port: int, *, delete_enabled: bool, tls: TLSFiles | None, htpasswd: str | None,
    token: TokenAuth | None,
) -> str:
    """The registry's YAML config. JSON is valid YAML, so no YAML library is needed."""
    cfg: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": delete_enabled},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "kitgc-test-secret"},
    }
    if tls is not None:
        cfg["http"] = {**cfg["http"], "tls": {"certificate": tls.cert_file, "key": tls.key_file}}  # type: ignore[dict-item]
    if htpasswd is not None:
        cfg["auth"] = {"htpasswd": {"realm": "kitgc-test", "path": htpasswd}}
    if token is not None:
        cfg["auth"] = {
            "token": {
                "realm": token.realm, "service": token.service, "issuer": token.issuer,
                "rootcertbundle": token.rootcertbundle,
            }
        }
    path = root / "config.yml"
    path.write_text(json.dumps(cfg, indent=2))
    return str(path)


def start_registry(
    root: str | Path,
    *,
    delete_enabled: bool = True,
    tls: TLSFiles | None = None,
    username: str | None = None,
    password: str | None = None,
    token: TokenAuth | None = None,
    startup_timeout: float = 15.0,
) -> RegistryServer:
    """Start ``docker-registry serve`` with data under ``root`` and wait until it answers.

    ``username``/``password`` enable htpasswd basic auth (normally together with ``tls``).
    Restarting on the same ``root`` keeps the pushed content, so a test can push anonymously
    and then restart the same storage with authentication.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    htpasswd = None
    if username is not None:
        htpasswd = make_htpasswd(root / "htpasswd", username, password or "")
    verify = ssl.create_default_context(cafile=tls.ca_file) if tls else True

    def start(port: int) -> RegistryServer:
        config = _config(root, port, delete_enabled=delete_enabled, tls=tls, htpasswd=htpasswd, token=token)
        log_path = root / f"registry-{port}.log"
        scheme = "https" if tls else "http"
        server = RegistryServer(
            address=f"127.0.0.1:{port}", url=f"{scheme}://127.0.0.1:{port}", root=root,
            process=start_process([REGISTRY_BINARY, "serve", config], log_path),
            ca_file=tls.ca_file if tls else None, username=username, password=password, log_path=log_path,
        )
        try:  # any HTTP answer (200, or 401 with auth) means it serves
            wait_until_answers(f"{server.url}/v2/", timeout=startup_timeout, what="docker-registry",
                               process=server.process, log=log_path, verify=verify)
        except BaseException:
            server.stop()
            raise
        return server

    return on_free_port(start)  # raises ServerDidNotStart (a RuntimeError) with the registry's log


def registry_available() -> bool:
    return os.path.exists(REGISTRY_BINARY) and shutil.which("htpasswd") is not None
