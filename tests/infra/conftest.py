"""Shared fixtures for the deployment checks: the SAM template, loaded as CloudFormation sees it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from .cfn import Stack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION_ID = "RelayFunction"


def load_template() -> dict[str, Any]:
    """Parse template.yaml; short tags (!Ref, !If, ...) become their long forms ({"Ref": ...})."""
    return yaml_parse(TEMPLATE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    """The relay function's Properties."""
    resource = template["Resources"][FUNCTION_ID]
    assert resource["Type"] == "AWS::Serverless::Function"
    return resource["Properties"]


@pytest.fixture(scope="module")
def env(function: dict[str, Any]) -> dict[str, Any]:
    return function["Environment"]["Variables"]


@pytest.fixture(scope="module")
def stack(template: dict[str, Any]) -> Callable[..., Stack]:
    """``stack(region=..., **parameters)``: the template as deployed with those values."""

    def make(region: str = "us-east-1", **parameters: Any) -> Stack:
        return Stack(template, parameters, region=region)

    return make


class _ManagedPolicies:
    """Stands in for the IAM lookup SAM makes for managed policy names."""

    def load(self) -> dict[str, str]:
        return {
            "AWSLambdaBasicExecutionRole": (
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            )
        }


@pytest.fixture(scope="module")
def generated(template: dict[str, Any]) -> dict[str, Any]:
    """The template after the SAM transform, as CloudFormation will receive it."""
    sam = copy.deepcopy(template)
    # The transform wants an S3 location; `sam deploy` puts one there after uploading the code.
    sam["Resources"][FUNCTION_ID]["Properties"]["CodeUri"] = "s3://bucket/relay.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        result: dict[str, Any] = transform(sam, {}, _ManagedPolicies())
        return result
