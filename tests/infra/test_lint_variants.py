"""``sam validate --lint`` (the SAM CLI's transform, then cfn-lint) on the template as each front
door and caller choice sets it: the parameters' defaults are set to the choice, since the linter
reads a template, not a deployment. ``make sam-validate`` lints the defaults themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import load_template

POOL = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123"
SAM = Path(sys.executable).parent / "sam"
VARIANTS = {
    "function-url": {"FrontDoor": "FunctionUrl"},
    "api-gateway": {"FrontDoor": "ApiGateway"},
    "both": {"FrontDoor": "Both"},
    "api-gateway-cognito": {"FrontDoor": "ApiGateway", "ApiCognitoUserPoolArn": POOL},
    "both-cognito-usage-plan": {
        "FrontDoor": "Both",
        "ApiCognitoUserPoolArn": POOL,
        "ApiUsagePlan": "true",
        "ApiQuotaPerDay": 5000,
    },
    "api-gateway-usage-plan": {"FrontDoor": "ApiGateway", "ApiUsagePlan": "true"},
}


def variant(defaults: dict[str, Any]) -> dict[str, Any]:
    template = load_template()
    for name, value in defaults.items():
        template["Parameters"][name]["Default"] = value
    return template


@pytest.mark.skipif(not SAM.exists(), reason="the SAM CLI is not installed beside this Python")
@pytest.mark.parametrize("name", list(VARIANTS))
def test_sam_validate_lint_passes(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(variant(VARIANTS[name]), indent=1), encoding="utf-8")

    result = subprocess.run(
        [str(SAM), "validate", "--lint", "--template", str(path)],
        cwd=tmp_path,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "eu-west-1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_a_variant_really_changes_the_choice() -> None:
    changed = variant(VARIANTS["both-cognito-usage-plan"])["Parameters"]
    assert changed["FrontDoor"]["Default"] == "Both"
    assert changed["ApiCognitoUserPoolArn"]["Default"] == POOL
