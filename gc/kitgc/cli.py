"""Command line: ``kitgc`` runs one pass; ``kitgc explain IMAGE`` says why an image stays;
``kitgc doctor`` checks, writing nothing, that a deleting run would have what it needs.

Flags mirror the environment variables of :data:`kitgc.config.VARIABLES` (a flag wins), and
``--help`` is generated from that same table so it cannot drift from what the code reads.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from kitgc import __version__, logs
from kitgc.config import VARIABLES, Settings, load
from kitgc.errors import EXIT_CONFIG, ConfigError

os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "True")


def _variables_help() -> str:
    width = max(len(v.env) for v in VARIABLES)
    lines = ["environment variables (a flag of the same name wins, e.g. --min-age 7d):"]
    for v in VARIABLES:
        default = v.shown_default if v.shown_default is not None else (v.default if v.default is not None else "unset")
        lines.append(f"  {v.env:<{width}}  {v.help} [default: {default}]")
    lines += [
        "",
        "exit codes: 0 pass completed, 1 some deletions (or reads) failed, 2 configuration or",
        "input error (nothing touched), 3 aborted for safety (nothing deleted).",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kitgc",
        description="Garbage-collect Apache Camel K kit images from a container registry: one pass, then exit. "
        "Dry run unless DRY_RUN=false.",
        epilog=_variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kitgc {__version__}")
    for v in VARIABLES:
        kwargs: dict[str, Any] = {"dest": v.env, "metavar": "VALUE", "help": argparse.SUPPRESS}
        if v.parse.__name__ == "parse_bool":
            kwargs.update(nargs="?", const="true")
        parser.add_argument(v.flag, **kwargs)
    sub = parser.add_subparsers(dest="command")
    explain = sub.add_parser("explain", help="read-only: say why an image or digest would be kept or deleted")
    explain.add_argument("image", help="an image reference (repo:tag, repo@sha256:…) or a bare digest")
    sub.add_parser(
        "doctor", help="read-only preflight: would a deleting run have what it needs? (writes nothing)",
        description="Check, writing nothing, what a deleting run needs: registry kind, TLS, authentication, "
        "listing, tags, manifests, whether deletion is permitted (as far as can be known without deleting), "
        "every cluster source readable, the writes allowed, state ConfigMap, Lease, Pushgateway and each "
        "cluster of REFERENCE_KUBECONFIG. One JSON object per check with LOG_FORMAT=json ({check, ok, detail}; "
        "ok null: cannot be known without deleting, or optional and unset), a checklist with LOG_FORMAT=console. "
        "Exit 0 when no check is false, 1 when one is, 2 for a configuration error.",
    )
    return parser


def _flags(ns: argparse.Namespace) -> dict[str, str | None]:
    return {v.env: getattr(ns, v.env, None) for v in VARIABLES}


def _early_logging(env: Mapping[str, str], flags: Mapping[str, str | None]) -> None:
    """Log set-up before the configuration is known to be valid (for its own error line)."""
    fmt = (flags.get("LOG_FORMAT") or env.get("LOG_FORMAT") or "json").strip().lower()
    logs.configure("console" if fmt == "console" else "json", "info")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    ns = build_parser().parse_args(argv)
    flags = _flags(ns)
    try:
        settings = load(env, flags)
    except ConfigError as exc:
        _early_logging(env, flags)
        logs.get_logger().error("config_error", error=str(exc), exit_code=EXIT_CONFIG)
        from kitgc.metrics import push_config_error

        push_config_error(env, version=__version__)
        return EXIT_CONFIG
    logs.configure(settings.log_format, settings.log_level)
    if ns.command == "explain":
        from kitgc.present.explain import explain

        return explain(settings, ns.image)
    if ns.command == "doctor":
        from kitgc.doctor import doctor

        return doctor(settings, env)
    return _run(settings, env)


def _run(settings: Settings, env: Mapping[str, str]) -> int:
    from kitgc.metrics import push_metrics
    from kitgc.progress import reporter
    from kitgc.run import run_pass
    from kitgc.sweep.stop import StopRequest

    stop = StopRequest()
    previous = signal.signal(signal.SIGTERM, stop.handle)
    try:
        with reporter(settings) as progress:
            outcome = run_pass(settings, env=env, should_stop=stop, progress=progress)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if settings.pushgateway_url:
        push_metrics(outcome.summary, settings, version=__version__)
    if settings.log_format == "console":
        # People get the table and the sentence on stdout, after the log lines; JSON mode
        # prints none of it (every line there stays one JSON object).
        from kitgc.present.console import print_report

        print_report(outcome)
    return outcome.summary.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
