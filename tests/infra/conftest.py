"""Shared fixtures for the deployment checks: the SAM template, loaded as CloudFormation sees it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
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
