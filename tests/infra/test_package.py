"""The Lambda package as built, started and deployed: the build's interpreter, the bootstrap's
import path, the deploy defaults and their guide."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

Doc = dict[str, Any]
PACKAGE_DIR = ROOT / "functions" / "relay"
BOOTSTRAP = PACKAGE_DIR / "bootstrap"
MAKEFILE = PACKAGE_DIR / "Makefile"


def runtime_version(function: Doc) -> str:
    match = re.fullmatch(r"python(3\.\d+)", function["Runtime"])
    assert match, function["Runtime"]
    return match.group(1)


def fake_python(tmp_path: Path, version: str) -> Path:
    """An executable that answers the build's version question like Python ``version``."""
    script = tmp_path / f"python{version}"
    script.write_text(f"#!/bin/sh\necho {version}\n")
    script.chmod(0o755)
    return script


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``make -C functions/relay ARGS`` with ``env`` over this environment, less PYTHON (as
    plain `sam build` runs it, unless a test passes PYTHON=... as an argument)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    base = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(PACKAGE_DIR), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, **(env or {})},
    )


# --- the build ------------------------------------------------------------------------------------


def test_build_targets_the_runtime_version(function: Doc) -> None:
    makefile = MAKEFILE.read_text(encoding="utf-8")
    (pinned,) = re.findall(r"^LAMBDA_PYTHON := (\S+)$", makefile, re.M)
    assert pinned == runtime_version(function)
    # The interpreter is named by version, never a bare python3 that may be another one.
    assert re.search(r"^PYTHON \?= python\$\(LAMBDA_PYTHON\)$", makefile, re.M)
    assert "--python-version $(LAMBDA_PYTHON)" in makefile
    assert re.search(r"^build-RelayFunction: check-python$", makefile, re.M)


def test_build_refuses_another_python_before_doing_anything(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    other = fake_python(tmp_path, "3.11")
    result = make("build-RelayFunction", f"ARTIFACTS_DIR={artifacts}", f"PYTHON={other}")
    assert result.returncode != 0
    assert "is Python 3.11" in result.stderr and "3.12" in result.stderr
    assert list(artifacts.iterdir()) == [], "nothing may be built with the wrong interpreter"


def test_build_refuses_a_python_that_does_not_run(tmp_path: Path) -> None:
    result = make("check-python", f"PYTHON={tmp_path / 'python3.12'}")
    assert result.returncode != 0
    assert "cannot run" in result.stderr


def test_build_refuses_python3_from_path_when_it_is_not_3_12(tmp_path: Path) -> None:
    # Plain `sam build` passes no PYTHON: the Makefile's own default must be what is checked.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3.12").symlink_to(fake_python(tmp_path, "3.11"))
    result = make("check-python", env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode != 0
    assert "python3.12 is Python 3.11" in result.stderr


def test_build_accepts_the_runtime_version(function: Doc) -> None:
    if sys.version_info[:2] != tuple(map(int, runtime_version(function).split("."))):
        pytest.skip(f"this interpreter is not Python {runtime_version(function)}")
    result = make("check-python", f"PYTHON={sys.executable}")
    assert result.returncode == 0, result.stderr


# --- the bootstrap --------------------------------------------------------------------------------


def run_bootstrap(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run the bootstrap with a ``python3`` on PATH that is the real interpreter, but that
    reports its arguments, import path and which layer modules it could import."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    report = (
        "import importlib.util, json, os, sys; print(json.dumps({"
        "'argv': sys.argv[1:], 'path': sys.path, "
        "'pythonpath': os.environ['PYTHONPATH'], "
        "'unbuffered': os.environ.get('PYTHONUNBUFFERED'), "
        "'found': {m: importlib.util.find_spec(m) is not None "
        "for m in ('glm_relay', 'in_site_packages', 'in_python')}}))"
    )
    python3 = bin_dir / "python3"
    python3.write_text(f'#!/bin/sh\nexec {sys.executable} -c "{report}" "$@"\n')
    python3.chmod(0o755)
    result = subprocess.run(
        [str(BOOTSTRAP), "/var/runtime/bootstrap"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "LAMBDA_TASK_ROOT": str(PACKAGE_DIR),
            **env,
        },
    )
    assert result.returncode == 0, result.stderr
    reported: dict[str, Any] = json.loads(result.stdout)
    return reported


@pytest.fixture
def layers(tmp_path: Path, function: Doc) -> Path:
    """An /opt-like directory with a module in each place a Python layer may put one."""
    opt = tmp_path / "opt"
    site = opt / "python" / "lib" / f"python{runtime_version(function)}" / "site-packages"
    site.mkdir(parents=True)
    (site / "in_site_packages.py").write_text("")
    (opt / "python" / "in_python.py").write_text("")
    return opt


def test_bootstrap_puts_layers_on_the_import_path(tmp_path: Path, layers: Path) -> None:
    reported = run_bootstrap(tmp_path, {"LAMBDA_LAYERS_ROOT": str(layers)})
    assert reported["found"] == {"glm_relay": True, "in_site_packages": True, "in_python": True}
    assert reported["argv"] == ["-m", "glm_relay.runtime"]
    assert reported["unbuffered"] == "1"


def test_bootstrap_path_order_is_the_managed_runtimes(tmp_path: Path, function: Doc) -> None:
    # Lambda's own PYTHONPATH (the managed runtime directory) stays, after ours.
    reported = run_bootstrap(tmp_path, {"PYTHONPATH": "/var/runtime"})
    version = runtime_version(function)
    assert reported["pythonpath"].split(os.pathsep) == [
        str(PACKAGE_DIR),
        f"/opt/python/lib/python{version}/site-packages",
        "/opt/python",
        "/var/runtime",
    ]


def test_bootstrap_layer_path_names_the_runtime_version(function: Doc) -> None:
    text = BOOTSTRAP.read_text(encoding="utf-8")
    assert set(re.findall(r"python(3\.\d+)", text)) == {runtime_version(function)}


# --- deploy defaults ------------------------------------------------------------------------------


def test_samconfig_deploys_without_a_prompt() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["default"]["global"]["parameters"]["stack_name"]
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True  # no bucket to name by hand
    assert deploy["confirm_changeset"] is False  # no "Deploy this changeset? [y/N]"
    assert deploy["fail_on_empty_changeset"] is False  # a re-run with no change exits 0
    assert "guided" not in deploy
    # Whatever the template defaults are, samconfig does not override them behind the docs' back.
    assert "parameter_overrides" not in deploy
    assert config["default"]["validate"]["parameters"]["lint"] is True


def test_docs_describe_every_parameter(template: Doc) -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    missing = [name for name in template["Parameters"] if f"`{name}`" not in guide]
    assert missing == []
    assert "sam deploy --guided" in guide  # and why the first deploy does not use it


# The SAM CLI's template reader uses deprecated parts of its own dependencies.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_guided_deploy_has_no_unauthenticated_url_question_to_refuse(template: Doc) -> None:
    # `sam deploy --guided` asks "<resource> has no authentication. Is this okay? [y/N]" for each
    # FunctionUrlConfig (or Api event) with AuthType NONE, and Enter aborts. The URL is its own
    # resource, and the function checks its callers' tokens, so there is nothing to ask.
    from samcli.commands.deploy.auth_utils import auth_per_resource
    from samcli.lib.providers.provider import Stack as SamStack

    stacks = [SamStack("", "", "template.yaml", None, copy.deepcopy(template))]
    assert auth_per_resource(stacks) == []
