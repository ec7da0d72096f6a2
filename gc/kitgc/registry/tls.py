"""TLS for registry connections: the trust store, and which TLS failures retrying cannot fix.

Kept apart from the transport so the one decision that makes a TLS error final (the
certificate is not trusted, the handshake was refused) is easy to find and to test.
"""

from __future__ import annotations

import ssl

from kitgc.errors import ConfigError


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """System trust, plus ``ca_file`` when given (as Docker adds certs.d CAs to the system pool)."""
    ctx = ssl.create_default_context()
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
            raise ConfigError(
                f"invalid REGISTRY_CA_FILE {ca_file!r}: not a readable PEM bundle ({reason})"
            ) from None
    return ctx


def tls_failure(exc: BaseException) -> str | None:
    """The reason when ``exc`` is a TLS failure (not worth retrying), else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError):
            return None  # the peer hung up mid-handshake: may well work next time
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verification failed ({seen.verify_message or seen.reason})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS handshake failed ({seen.reason or type(seen).__name__})"
        seen = seen.__cause__ or seen.__context__
    return "certificate verification failed" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else None
