"""The template deploys in every region and partition: the secrets-extension layer, and ARNs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import botocore
import pytest

from .conftest import FUNCTION_ID

Doc = dict[str, Any]
LAYER_NAME = "AWS-Parameters-and-Secrets-Lambda-Extension"
# Partitions this project deploys to. The isolated (ISO) partitions publish no such layer that
# the public documentation lists: a stack there passes SecretsExtensionLayerArn (or none).
PARTITIONS = {"aws", "aws-cn", "aws-us-gov", "aws-eusc"}
# Regions where AWS publishes the layer for x86_64 only (docs/deploy.md says what to do there).
NO_ARM64_LAYER = {"eusc-de-east-1"}


def lambda_regions() -> dict[str, str]:
    """Every Lambda region botocore knows in PARTITIONS, with its partition."""
    endpoints = Path(botocore.__file__).parent / "data" / "endpoints.json"
    data = json.loads(endpoints.read_text(encoding="utf-8"))
    found = {}
    for partition in data["partitions"]:
        if partition["partition"] not in PARTITIONS:
            continue
        for region in partition["services"]["lambda"]["endpoints"]:
            if region in partition["regions"]:
                found[region] = partition["partition"]
    return found


def layer(stack: Any, region: str, **parameters: str) -> list[str]:
    function = stack(region=region, **parameters)
    return function.value(function.template["Resources"][FUNCTION_ID]["Properties"]).get(
        "Layers", []
    )


def test_layer_map_covers_every_lambda_region(template: Doc) -> None:
    regions = lambda_regions()
    assert {"us-east-1", "cn-north-1", "us-gov-west-1"} <= set(regions)
    mapped = template["Mappings"]["SecretsExtensionLayer"]
    assert sorted(set(regions) - set(mapped)) == []
    for region in regions:
        assert "X86" in mapped[region], region
        if region not in NO_ARM64_LAYER:
            assert "Arm64" in mapped[region], region


@pytest.mark.parametrize("region", sorted(lambda_regions()))
def test_layer_map_entries_are_well_formed(template: Doc, region: str) -> None:
    entry = template["Mappings"]["SecretsExtensionLayer"][region]
    assert set(entry) <= {"Account", "Arm64", "X86"}
    # Strings: an account id such as 015030872274 must keep its leading zero.
    assert isinstance(entry["Account"], str) and re.fullmatch(r"[0-9]{12}", entry["Account"])
    for key in ("Arm64", "X86"):
        if key in entry:
            assert isinstance(entry[key], str) and re.fullmatch(r"[1-9][0-9]*", entry[key])


@pytest.mark.parametrize(
    ("region", "architecture", "expected"),
    [
        (
            "us-east-1",
            "arm64",
            f"arn:aws:lambda:us-east-1:177933569100:layer:{LAYER_NAME}-Arm64:99",
        ),
        ("eu-west-1", "x86_64", f"arn:aws:lambda:eu-west-1:015030872274:layer:{LAYER_NAME}:101"),
        (
            "cn-north-1",
            "arm64",
            f"arn:aws-cn:lambda:cn-north-1:287114880934:layer:{LAYER_NAME}-Arm64:89",
        ),
        (
            "cn-northwest-1",
            "x86_64",
            f"arn:aws-cn:lambda:cn-northwest-1:287310001119:layer:{LAYER_NAME}:94",
        ),
        (
            "us-gov-west-1",
            "arm64",
            f"arn:aws-us-gov:lambda:us-gov-west-1:127562683043:layer:{LAYER_NAME}-Arm64:87",
        ),
        (
            "eusc-de-east-1",
            "x86_64",
            f"arn:aws-eusc:lambda:eusc-de-east-1:041683371183:layer:{LAYER_NAME}:5",
        ),
    ],
)
def test_default_layer_matches_region_partition_and_architecture(
    stack: Any, region: str, architecture: str, expected: str
) -> None:
    assert layer(stack, region, Architecture=architecture) == [expected]


def test_explicit_layer_bypasses_the_map_even_where_it_has_no_entry(stack: Any) -> None:
    arn = f"arn:aws:lambda:xx-new-1:111122223333:layer:{LAYER_NAME}-Arm64:1"
    assert layer(stack, "xx-new-1", SecretsExtensionLayerArn=arn) == [arn]
    # Without it the deploy fails on the map, as CloudFormation would.
    with pytest.raises(LookupError, match="xx-new-1"):
        layer(stack, "xx-new-1")


def secrets_source(stack: Any, region: str, **parameters: str) -> str:
    deployed = stack(region=region, **parameters)
    env = deployed.template["Resources"][FUNCTION_ID]["Properties"]["Environment"]
    source: str = deployed.value(env)["Variables"]["SECRETS_SOURCE"]
    return source


def test_no_layer_means_the_sdk_reads_the_secrets(stack: Any) -> None:
    assert layer(stack, "xx-new-1", SecretsExtensionLayerArn="none") == []
    assert secrets_source(stack, "xx-new-1", SecretsExtensionLayerArn="none") == "sdk"
    assert secrets_source(stack, "us-east-1") == "extension"


def test_layer_parameter_accepts_every_partition(template: Doc) -> None:
    pattern = template["Parameters"]["SecretsExtensionLayerArn"]["AllowedPattern"]
    for partition in ("aws", "aws-cn", "aws-us-gov", "aws-eusc"):
        arn = f"arn:{partition}:lambda:xx-east-1:123456789012:layer:{LAYER_NAME}:12"
        assert re.fullmatch(pattern, arn), arn
    assert re.fullmatch(pattern, "none") and re.fullmatch(pattern, "")


def strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in strings(v, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def test_no_arn_or_domain_is_written_for_one_partition(template: Doc) -> None:
    # Resources and outputs build ARNs with ${AWS::Partition} and domains with ${AWS::URLSuffix}.
    # Service principals (apigateway.amazonaws.com) are the same name in every partition.
    offenders = [
        (path, value)
        for section in ("Resources", "Outputs")
        for path, value in strings(template[section], section)
        if re.search(r"arn:aws[:-]", value)
        or ("amazonaws.com" in value and not path.endswith(".Principal"))
    ]
    assert offenders == []


@pytest.mark.parametrize("region", ["us-east-1", "cn-north-1", "us-gov-west-1"])
def test_rendered_arns_and_urls_carry_the_region_partition(stack: Any, region: str) -> None:
    deployed = stack(region=region, FrontDoor="Both", SecretsExtensionLayerArn="")
    partition, suffix = deployed.refs["AWS::Partition"], deployed.refs["AWS::URLSuffix"]
    rendered = deployed.value(
        {"R": deployed.template["Resources"], "O": deployed.template["Outputs"]}
    )
    for path, value in strings(rendered):
        for arn in re.findall(r"arn:[a-z-]+:", value):
            assert arn == f"arn:{partition}:", (path, value)
    assert deployed.value(deployed.template["Outputs"]["ApiUrl"]["Value"]).endswith(
        f".execute-api.{region}.{suffix}/<RelayApi.Stage>/"
    )
