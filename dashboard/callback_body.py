"""The shape of a callback request, checked before Dash sees it.

Dash's dispatcher trusts the body of `POST /_dash-update-component`: a missing key, a list
where it expects an object, or inputs that are not the callback's own end in a `KeyError`
or `TypeError` deep inside it — a 500. This checks the body against the callback it names
(the same inputs and states, in order, and the same outputs), so a malformed request gets
400 and every callback sees exactly the values it declared. Values themselves are the
callbacks' to check. Pattern-matching ids (dicts) are not used by the dashboard and are
refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class _Target(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    property: str


class _Value(_Target):
    value: Any = None


class CallbackBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # the renderer sends bookkeeping of its own

    output: str
    outputs: _Target | list[_Target]
    inputs: list[_Value]
    state: list[_Value] = []
    changedPropIds: list[str] = []


def _sent(items: list[_Value]) -> list[tuple[str, str]]:
    return [(item.id, item.property) for item in items]


def _declared(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["id"], item["property"]) for item in items]


def problem(body: Any, callback_map: dict[str, Any]) -> str | None:
    """Why `body` is not a well-formed request for one of `callback_map`'s callbacks."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    try:
        parsed = CallbackBody.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"
    spec = callback_map.get(parsed.output)
    if spec is None:
        return "no such callback"
    if "callback" not in spec:  # a clientside callback: the browser runs it, never the server
        return "the callback runs in the browser"
    if _sent(parsed.inputs) != _declared(spec["inputs"]):
        return "inputs are not the callback's"
    if _sent(parsed.state) != _declared(spec["state"]):
        return "states are not the callback's"
    outputs = parsed.outputs if isinstance(parsed.outputs, list) else [parsed.outputs]
    declared = parsed.output.strip(".").split("...")
    if [f"{o.id}.{o.property}" for o in outputs] != declared:
        return "outputs are not the callback's"
    if not set(parsed.changedPropIds) <= {f"{i.id}.{i.property}" for i in parsed.inputs}:
        return "a changed property is not an input"
    return None
