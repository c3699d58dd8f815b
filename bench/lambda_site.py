"""A Lambda-shaped package set for cold-start runs, made of links into this virtualenv.

Cold starts are mostly imports, and the development virtualenv holds far more than the function's
package does: aws-sam-cli and moto bring rich, click and cryptography, so ``import httpx`` also
imports httpx's command line (rich, click: about 60 ms here) and ``import jwt`` loads cryptography
(about 45 ms). The deployed function has none of them. So cold-start runs use an interpreter
started with ``-S`` (no site-packages at all) and a task root (see ``LambdaSite``) holding only:

- the distributions in ``functions/relay/requirements.txt`` and their dependencies (what
  ``sam build`` puts in the artifact), plus boto3 and its dependencies (the managed Python
  runtime ships boto3);
- for the baseline, Starlette and uvicorn with theirs (what an adapter-shaped app would ship).

Each distribution's top-level packages are linked from this virtualenv's site-packages into one
temporary directory; nothing is downloaded. Extras are not followed, exactly as pip would not.
"""

from __future__ import annotations

import asyncio
import os
import py_compile
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from bench.common import BOOTSTRAP, PACKAGE_DIR, ROOT

REQUIREMENTS = PACKAGE_DIR / "requirements.txt"
MANAGED_RUNTIME = ("boto3",)
ADAPTER_SHAPE = ("starlette", "uvicorn")
_EXEC_LINE = "exec python3 -m glm_relay.runtime"
_EXEC_LINE_NO_SITE = "exec python3 -S -m glm_relay.runtime"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = _NAME.match(line)
        if match:
            names.append(match.group(1))
    return names


def _dependencies(dist: metadata.Distribution) -> list[str]:
    """Unconditional dependencies (no extras, markers that hold here)."""
    from packaging.requirements import Requirement

    names = []
    for spec in dist.requires or []:
        requirement = Requirement(spec)
        marker = requirement.marker
        if marker is not None and not marker.evaluate({"extra": ""}):
            continue
        names.append(requirement.name)
    return names


def _closure(roots: list[str]) -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        key = name.lower().replace("_", "-")
        if key in found:
            continue
        dist = metadata.distribution(name)
        found[key] = dist
        pending.extend(_dependencies(dist))
    return found


def _top_level(dist: metadata.Distribution) -> set[str]:
    """The importable top-level names a distribution installs."""
    names: set[str] = set()
    for file in dist.files or []:
        parts = file.parts
        if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] in {"..", "bin"}:
            continue
        if parts[0] == "__pycache__":
            continue
        top = parts[0]
        if len(parts) == 1 and not top.endswith((".py", ".so")):
            continue
        names.add(top)
    return names


class LambdaSite:
    """A temporary task root shaped like the ``sam build`` artifact (``/var/task`` in Lambda).

    It holds a copy of ``glm_relay``, the bootstrap, and links to the dependencies (installed
    with their bytecode, as pip does). ``compiled`` ships ``glm_relay``'s bytecode too
    (unchecked-hash ``.pyc``, valid whatever the file times), as ``functions/relay/Makefile`` does
    for ``sam build``; without it the package is source only, as a default Python build ships it,
    and since ``/var/task`` is read-only Lambda would compile those modules at every cold start.
    ``baseline`` adds what the adapter-shaped baseline ships: Starlette and uvicorn.
    The bootstrap's interpreter runs with ``-S``, so this virtualenv's other packages stay out.
    """

    def __init__(self, *, baseline: bool = False, compiled: bool = False) -> None:
        roots = [*_requirement_names(REQUIREMENTS), *MANAGED_RUNTIME]
        if baseline:
            roots.extend(ADAPTER_SHAPE)
        self.distributions = _closure(roots)
        self.path = Path(tempfile.mkdtemp(prefix="glm-relay-task-"))
        shutil.copytree(
            PACKAGE_DIR / "glm_relay",
            self.path / "glm_relay",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        if compiled:
            # What a build step could ship: bytecode that Lambda uses without checking the source.
            import compileall

            compileall.compile_dir(
                self.path / "glm_relay",
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        bootstrap = BOOTSTRAP.read_text()
        if _EXEC_LINE not in bootstrap:
            raise RuntimeError(f"{BOOTSTRAP} no longer has the line {_EXEC_LINE!r}")
        self.bootstrap = self.path / "bootstrap"
        self.bootstrap.write_text(bootstrap.replace(_EXEC_LINE, _EXEC_LINE_NO_SITE))
        self.bootstrap.chmod(0o755)
        cache = self.path / "__pycache__"
        cache.mkdir()
        for dist in self.distributions.values():
            base = Path(str(dist.locate_file("")))
            for name in _top_level(dist):
                target = self.path / name
                if not target.exists():
                    target.symlink_to(base / name)
                if name.endswith(".py"):
                    # A one-file module's bytecode lives in its directory's __pycache__.
                    for pyc in (base / "__pycache__").glob(name[:-3] + ".*.pyc"):
                        (cache / pyc.name).symlink_to(pyc)

    def env(
        self, extra: Mapping[str, str] | None = None, *, repository: bool = False
    ) -> dict[str, str]:
        """A child's environment: this task root (and with ``repository`` the repository root, for
        ``bench.baseline_relay``) on ``PYTHONPATH``; no bytecode written, so every run compiles
        the same modules."""
        from bench.common import python_env

        env = python_env(extra)
        env["PYTHONPATH"] = str(self.path) + (os.pathsep + str(ROOT) if repository else "")
        env["LAMBDA_TASK_ROOT"] = str(self.path)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    async def spawn_runtime(self, env: Mapping[str, str]) -> asyncio.subprocess.Process:
        """The bootstrap started as Lambda starts it, in the task root, output discarded."""
        return await asyncio.create_subprocess_exec(
            str(self.bootstrap),
            env=dict(env),
            cwd=self.path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    def python(self, *args: str) -> list[str]:
        """The interpreter command line, without site-packages."""
        return [sys.executable, "-S", *args]

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> LambdaSite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def names(self) -> list[str]:
        return sorted(self.distributions)
