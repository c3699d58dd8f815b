"""A small CloudFormation evaluator: what template.yaml resolves to for given parameters and region.

Only what the template uses: Ref, Fn::If, Fn::FindInMap, Fn::Sub, Fn::Join, Fn::GetAtt, Fn::Select
and the condition functions. A resource's attribute (GetAtt, or Ref of a resource) becomes a
readable placeholder such as "<RelayFunction.Arn>", so a rendered string can be compared whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NO_VALUE = object()

PARTITIONS = {"cn-": ("aws-cn", "amazonaws.com.cn"), "us-gov-": ("aws-us-gov", "amazonaws.com")}
EUSC = ("aws-eusc", "amazonaws.eu")


def partition_of(region: str) -> tuple[str, str]:
    """The partition and URL suffix of a region."""
    if region.startswith("eusc-"):
        return EUSC
    for prefix, found in PARTITIONS.items():
        if region.startswith(prefix):
            return found
    return "aws", "amazonaws.com"


@dataclass
class Stack:
    """A template with parameter values and a region: ``stack.value(node)`` resolves a node."""

    template: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"
    account: str = "123456789012"
    stack_name: str = "glm-relay"

    def __post_init__(self) -> None:
        values: dict[str, Any] = {}
        for name, spec in self.template["Parameters"].items():
            raw = self.parameters.get(name, spec.get("Default"))
            assert raw is not None, f"parameter {name} has no value and no default"
            if spec["Type"] == "CommaDelimitedList" and isinstance(raw, str):
                raw = [item.strip() for item in raw.split(",")]
            values[name] = raw
        unknown = set(self.parameters) - set(values)
        assert not unknown, f"not parameters of the template: {unknown}"
        partition, suffix = partition_of(self.region)
        values.update(
            {
                "AWS::Region": self.region,
                "AWS::Partition": partition,
                "AWS::URLSuffix": suffix,
                "AWS::AccountId": self.account,
                "AWS::StackName": self.stack_name,
                "AWS::NoValue": NO_VALUE,
            }
        )
        self.refs = values
        self._conditions: dict[str, bool] = {}

    # --- conditions -----------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, logical_id: str, section: str = "Resources") -> bool:
        """Whether a resource (or output) is created with these parameters."""
        condition = self.template[section][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    # --- values ---------------------------------------------------------------------------------

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = getattr(self, "_" + key.replace("Fn::", "fn_").replace("::", "_"), None)
            if handler is not None:
                return handler(arg)
        resolved = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _Ref(self, name: str) -> Any:
        if name in self.refs:
            return self.refs[name]
        # SAM's own references: ``Api.Stage`` (and the like) name what SAM generates for Api.
        resource = name.split(".", 1)[0]
        assert resource in self.template["Resources"], f"Ref to nothing: {name}"
        return f"<{name}>"

    def _Condition(self, name: str) -> bool:
        return self.condition(name)

    def _fn_If(self, arg: list[Any]) -> Any:
        name, then, otherwise = arg
        # As CloudFormation does: only the chosen branch is resolved.
        return self.value(then if self.condition(name) else otherwise)

    def _fn_Equals(self, arg: list[Any]) -> bool:
        left, right = (self.value(a) for a in arg)
        return str(left) == str(right)

    def _fn_Not(self, arg: list[Any]) -> bool:
        return not self.value(arg[0])

    def _fn_And(self, arg: list[Any]) -> bool:
        return all(self.value(a) for a in arg)

    def _fn_Or(self, arg: list[Any]) -> bool:
        return any(self.value(a) for a in arg)

    def _fn_FindInMap(self, arg: list[Any]) -> Any:
        mapping, top, second = (self.value(a) for a in arg)
        table = self.template["Mappings"][mapping]
        if top not in table or second not in table[top]:
            raise LookupError(f"Unable to get mapping for {mapping}::{top}::{second}")
        return table[top][second]

    def _fn_GetAtt(self, arg: Any) -> str:
        name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        assert name in self.template["Resources"], f"GetAtt of nothing: {name}"
        return f"<{name}.{attribute}>"

    def _fn_Join(self, arg: list[Any]) -> str:
        separator, items = arg
        return str(separator).join(str(item) for item in self.value(items))

    def _fn_Select(self, arg: list[Any]) -> Any:
        index, items = arg
        return self.value(items)[int(self.value(index))]

    def _fn_Sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        local = {k: self.value(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if name in self.refs:
                return str(self.refs[name])
            if "." in name:
                return self._fn_GetAtt(name)
            return str(self._Ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)
