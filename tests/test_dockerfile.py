"""The container image: the Dockerfile is lint-clean and matches the manifests, and the steps
it performs (build the wheel, install only that wheel, drop pip, run as UID 65532) work.

No container engine runs here, so the install test mirrors the image's steps in a fresh venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kitgc import config
from testbed.tools import tool

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
UID = 65532


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_dockerfile_is_hadolint_clean() -> None:
    proc = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """Control: the linter runs and reports, so the clean result above means something."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install kitgc\n")
    proc = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "DL3006" in proc.stdout  # untagged base image


def test_image_is_two_stages_on_python_3_11_slim() -> None:
    args = {k: v for k, v in (a[1].split("=", 1) for a in instructions() if a[0] == "ARG" and "=" in a[1])}
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    builder, final = stages()
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    assert any(k == "RUN" and "pip wheel" in v for k, v in builder)
    run = " ".join(v for k, v in final if k == "RUN")
    assert "--mount=type=bind,from=build" in run, "wheels come from stage 1 without staying in a layer"
    assert "--no-index" in run and "--no-cache-dir" in run
    assert "pip uninstall --yes pip setuptools wheel" in run
    assert not any(k in {"COPY", "ADD"} for k, _ in final), "the final stage copies nothing in"


def test_image_runs_kitgc_as_the_uid_the_cronjob_expects() -> None:
    final = stages()[-1]
    users = [v for k, v in final if k == "USER"]
    assert users == [f"{UID}:{UID}"], "numeric, so Kubernetes can check runAsNonRoot"
    run = " ".join(v for k, v in final if k == "RUN")
    assert f"--uid {UID}" in run and f"--gid {UID}" in run
    assert [v for k, v in final if k == "ENTRYPOINT"] == ['["kitgc"]']
    cronjob = (ROOT / "manifests" / "base" / "cronjob.yaml").read_text()
    assert f"runAsUser: {UID}" in cronjob and f"runAsGroup: {UID}" in cronjob


def test_image_carries_the_oci_labels() -> None:
    final = stages()[-1]
    labels = " ".join(v for k, v in final if k == "LABEL")
    found = dict(re.findall(r'org\.opencontainers\.image\.(\w+)="([^"]*)"', labels))
    assert {"title", "description", "source", "licenses", "version"} <= set(found)
    assert found["licenses"] == "Apache-2.0"
    assert found["title"] == "camel-k-kit-gc"
    assert found["version"] == "${VERSION}"
    args = dict(a[1].split("=", 1) for a in final if a[0] == "ARG" and "=" in a[1])
    assert args["VERSION"] == VERSION, "the image's default version is the package's"


# --- .dockerignore -------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching line wins; a directory match covers what is below."""
    excluded = False
    parts = path.split("/")
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line.lstrip("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [".venv/bin/python", ".git/HEAD", "tests/test_x.py", "testbed/servers.py", ".pytest_cache/v/x",
     ".mypy_cache/x", ".ruff_cache/x", ".hypothesis/x", "build/manifests/x.yaml", "dist/x.whl", "docs/deploy.md",
     "manifests/base/cronjob.yaml", "gc/kitgc/__pycache__/cli.cpython-311.pyc",
     "gc/camel_k_kit_gc.egg-info/PKG-INFO", "Dockerfile", ".ci/run"],
)
def test_build_context_excludes(path: str) -> None:
    assert dockerignored(path)


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "gc/kitgc/cli.py", "gc/kitgc/cluster/sources.py"])
def test_build_context_includes_what_the_wheel_needs(path: str) -> None:
    assert not dockerignored(path)


def test_build_context_has_every_file_the_dockerfile_copies() -> None:
    for k, v in instructions():
        if k == "COPY" and "--from" not in v:
            for src in v.split()[:-1]:
                assert not dockerignored(src.rstrip("/")), src


# --- the image's steps, for real ----------------------------------------------------------


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """pytest's tmp_path is private to root; the non-root user must reach the venv."""
    path = Path(tempfile.mkdtemp(prefix="kitgc-image-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _as_image_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd  # already not root
    return [tool("setpriv"), f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "--", *cmd]


@pytest.mark.timeout(600)
def test_wheel_installs_alone_and_kitgc_help_runs_as_the_non_root_image_user(world_readable_dir: Path) -> None:
    src = world_readable_dir / "src"
    # The build context, as .dockerignore leaves it.
    shutil.copytree(
        ROOT, src,
        ignore=lambda d, names: [n for n in names if dockerignored(os.path.relpath(Path(d, n), ROOT))],
    )
    wheels = world_readable_dir / "wheels"
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--wheel-dir", str(wheels),
          str(src)], env=pip_env, timeout=300)
    [wheel] = wheels.glob("camel_k_kit_gc-*.whl")
    assert wheel.name.startswith(f"camel_k_kit_gc-{VERSION}-")

    venv = world_readable_dir / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    py = str(venv / "bin" / "python")
    _run([py, "-m", "pip", "install", "--no-cache-dir", str(wheel)], env=pip_env, timeout=400)
    # As in the image: no pip, setuptools or wheel at run time.
    _run([py, "-m", "pip", "uninstall", "--yes", "pip", "setuptools", "wheel"], env=pip_env, timeout=60)
    assert not list((venv / "lib").glob("python*/site-packages/pip"))

    kitgc = venv / "bin" / "kitgc"
    assert kitgc.exists(), "the wheel installs the console script"
    clean_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        _as_image_user([str(kitgc), "--help"]), capture_output=True, text=True, timeout=60,
        env=clean_env, cwd=world_readable_dir,
    )
    assert proc.returncode == 0, f"kitgc --help failed:\n{proc.stdout}\n{proc.stderr}"
    for var in config.VARIABLES:
        assert var.env in proc.stdout, f"--help does not mention {var.env}"

    # The installed package is the one just built, not the editable checkout.
    who = _run(_as_image_user([py, "-c", "import kitgc, os, json; print(json.dumps([kitgc.__file__, os.getuid()]))"]),
               env=clean_env, cwd=world_readable_dir)
    path, uid = json.loads(who.stdout)
    assert path.startswith(str(venv))
    assert uid != 0


def test_the_bench_measures_kitgc_with_the_images_malloc_settings(tmp_path: Path) -> None:
    """The memory figures in the README are measured with what the image sets, not the defaults."""
    from bench.variants import kitgc_env

    text = DOCKERFILE.read_text().replace("\\\n", " ")
    image = dict(re.findall(r"\b(MALLOC_[A-Z_]+)=(\S+)", text))
    assert image.keys() >= {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"}
    env = kitgc_env("127.0.0.1:5000", tmp_path / "kubeconfig")
    assert {k: env[k] for k in image} == image
