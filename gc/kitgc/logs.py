"""Logging set-up: structlog for our events, with every other writer routed through it.

In ``json`` mode every line the program writes is one JSON object, on stdout and stderr
alike: library loggers (kubernetes, urllib3, httpx), Python warnings and uncaught exceptions
all go through one formatter. A redaction processor drops anything that looks like a
credential before a line is rendered, so a careless ``log.debug(headers=…)`` cannot leak.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEYS = re.compile(r"(authorization|password|passwd|secret|token|credential|auth)$", re.I)
_BEARER = re.compile(r"((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+", re.I)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
REDACTED = "<redacted>"


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace values of secret-looking keys, and Bearer/Basic credentials inside strings."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value not in (None, "", False):
            event[key] = REDACTED
        elif isinstance(value, str) and ("earer " in value or "asic " in value):
            event[key] = _BEARER.sub(r"\1" + REDACTED, value)
    return event


def configure(fmt: str = "json", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger to write to ``stream`` (stdout)."""
    stream = stream or sys.stdout
    lvl = _LEVELS.get(level, logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer(default=str)
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    # Libraries are chatty at debug (urllib3 prints request lines); keep them at warning
    # unless the user asked for debug, and even then never below INFO for urllib3 headers.
    for noisy in ("urllib3", "kubernetes", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if lvl > logging.DEBUG else logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    sys.excepthook = _log_uncaught


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    structlog.get_logger("kitgc").error("uncaught_exception", exc_info=(exc_type, exc, tb))


def get_logger(name: str = "kitgc") -> Any:
    return structlog.get_logger(name)
