"""Talking to the dashboard over HTTP as a browser, a script or an attacker would: callback
requests as Dash's renderer sends them, the sign-in form, connections from a chosen
loopback address."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter


def callback_body(
    app: Any,
    output: str,
    values: dict[tuple[str, str], Any],
    changed: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The JSON body of `POST /_dash-update-component` for the callback writing `output`
    (a key of `app.callback_map`), with the given input and state values; `changed`: the
    inputs that fired (default: all of them)."""
    spec = app.callback_map[output]

    def items(kind: str) -> list[dict[str, Any]]:
        return [
            {
                "id": d["id"],
                "property": d["property"],
                "value": values.get((d["id"], d["property"])),
            }
            for d in spec[kind]
        ]

    outputs = [
        {"id": o.split(".")[0], "property": o.split(".")[1]} for o in output.strip(".").split("...")
    ]
    return {
        "output": output,
        "outputs": outputs if output.startswith("..") else outputs[0],
        "inputs": items("inputs"),
        "state": items("state"),
        "changedPropIds": [
            f"{d['id']}.{d['property']}"
            for d in spec["inputs"]
            if changed is None or (d["id"], d["property"]) in changed
        ],
    }


def output_of(app: Any, component_id: str) -> str:
    """The callback map's key of the callback that writes `component_id`."""
    return next(k for k in app.callback_map if f"{component_id}." in k)


class _From(HTTPAdapter):
    """Connections from a chosen loopback address: another client, as the server sees it."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(address: str) -> requests.Session:
    """A `requests` session whose connections come from `address`."""
    client = requests.Session()
    client.trust_env = False  # no proxy settings from the environment
    client.mount("http://", _From(address))
    return client


def post_login(client: requests.Session, base: str, username: str, password: str) -> Any:
    """The sign-in form as a script fills it: its token, then the POST."""
    page = client.get(f"{base}/login").text
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client.post(
        f"{base}/login",
        data={"csrf": token, "username": username, "password": password, "next": "/"},
        allow_redirects=False,
    )
