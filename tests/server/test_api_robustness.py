"""Whole-API checks driven by the OpenAPI document: docs, credentials on every route, no 500 on bad input."""

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.server.api_test_helpers import (
    admin_client,
    admin_key,
    bearer,
    create_model,
    create_user,
    insert_instance,
    register_worker,
    unique,
)
from tests.utils.server import RunningServer

BODY_METHODS = ("post", "put", "patch")
# One wrong value of every JSON type, plus the usual edge cases (too big, too long, empty, non-ASCII).
BAD_VALUES: list[Any] = [None, True, -1, 10**20, 1.5, "", "x" * 5000, [], {}, "é中😀"]
RAW_BODIES = [b"{", b"[]", b"null", b'"text"', b"\xff\xfe\x00", b"[" * 50_000 + b"]" * 50_000, b'{"a": ' * 2000]
BAD_IDS = [0, -1, 2**31, 10**20]


def _openapi(server: RunningServer) -> dict[str, Any]:
    with server.client() as anonymous:
        response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _operations(spec: dict[str, Any], prefix: str = "/v2") -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in spec["paths"].items()
        if path.startswith(prefix)
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _fill(path: str, value: object) -> str:
    return re.sub(r"\{[^}]+\}", str(value), path)


def test_docs_and_openapi(server: RunningServer) -> None:
    with server.client() as anonymous:
        docs = anonymous.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = _openapi(server)
    assert spec["info"]["title"] == "GPUStack"
    assert {"get", "post"} <= set(spec["paths"]["/v2/models"])
    assert {"get", "put", "patch", "delete"} <= set(spec["paths"]["/v2/models/{model_id}"])
    for path in ("/v2/workers/register", "/v2/model-instances", "/v2/users/me", "/v2/api-keys", "/auth/login"):
        assert path in spec["paths"], path
    schemas = {name.split("-")[0] for name in spec["components"]["schemas"]}  # WorkerStatus-Input/-Output
    assert {"ModelCreate", "ModelPublic", "WorkerStatus", "ClusterPublic", "GPUDevicePublic"} <= schemas


def test_every_v2_route_needs_credentials(server: RunningServer) -> None:
    operations = _operations(_openapi(server))
    assert len(operations) >= 25  # the sweep really covers the API
    failures = []
    for i, (method, path) in enumerate(operations):
        # wrong passwords count against the address and the user name: each operation uses an address and a
        # name of its own, so neither the sweep nor the shared server's budget for 127.0.0.1 hits the limit
        transport = httpx.HTTPTransport(local_address=f"127.0.{10 + i // 250}.{1 + i % 250}")
        with httpx.Client(base_url=server.url, timeout=30, transport=transport) as anonymous:
            url = _fill(path, 1)
            # registration checks its own token after the body, so give it a valid body
            body = {"name": unique("w")} if path == "/v2/workers/register" else None
            basic = "Basic " + base64.b64encode(f"nobody{i}:no".encode()).decode()
            for headers in ({}, bearer("gpustack_not_a_key"), {"Authorization": basic}):
                response = anonymous.request(method.upper(), url, json=body, headers=headers)
                if response.status_code != 401 or not response.json().get("message"):
                    failures.append(f"{method.upper()} {url} {headers}: {response.status_code} {response.text[:100]}")
    assert not failures, "\n".join(failures)


class _Target:
    """Existing rows and credentials to aim the bad requests at."""

    def __init__(self, server: RunningServer, api: httpx.Client):
        self.worker = register_worker(server)
        self.model = create_model(api)
        self.user = create_user(api)
        self.instance = insert_instance(server, model_id=self.model["id"], worker_id=self.worker["id"])
        self.ids = {
            "model_id": self.model["id"],
            "user_id": self.user["id"],
            "worker_id": self.worker["id"],
            "instance_id": self.instance,
        }
        admin = bearer(admin_key(server))
        worker = bearer(self.worker["credential"])
        model_name = self.model["name"]
        # (method, path) -> (headers, a valid body built fresh per request)
        self.routes: dict[tuple[str, str], tuple[dict[str, str], Callable[[], dict[str, Any]]]] = {
            ("post", "/v2/models"): (admin, lambda: {"name": unique("fz"), "local_path": "/x"}),
            ("put", "/v2/models/{model_id}"): (admin, lambda: {"name": model_name, "local_path": "/x"}),
            ("patch", "/v2/models/{model_id}"): (admin, lambda: {"replicas": 1}),
            ("post", "/v2/users"): (admin, lambda: {"username": unique("fz"), "password": "pw-123456"}),
            ("put", "/v2/users/{user_id}"): (admin, lambda: {}),
            # a wrong current password: whatever else is sent, the admin's password never changes
            ("post", "/v2/users/me/password"): (
                admin,
                lambda: {"current_password": "not-the-password", "new_password": "pw-123456"},
            ),
            ("post", "/v2/api-keys"): (admin, lambda: {"name": unique("fz")}),
            ("post", "/v2/workers/register"): (bearer(server.token), lambda: {"name": unique("fz")}),
            ("post", "/v2/workers/me/status"): (worker, lambda: {"status": {}}),
            ("put", "/v2/workers/{worker_id}"): (admin, lambda: {"labels": {}}),
            ("patch", "/v2/model-instances/{instance_id}"): (worker, lambda: {}),
            ("post", "/v2/model-files"): (worker, lambda: {"source_key": unique("fz")}),
        }
        self.default = (admin, dict)

    def url(self, path: str) -> str:
        return re.sub(r"\{([^}]+)\}", lambda m: str(self.ids.get(m.group(1), 1)), path)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema behind a $ref or an Optional[$ref], else {}."""
    for candidate in [schema, *schema.get("anyOf", [])]:
        if "$ref" in candidate:
            return spec["components"]["schemas"][candidate["$ref"].rsplit("/", 1)[-1]]  # type: ignore[no-any-return]
    return schema if "properties" in schema else {}


def _mutations(spec: dict[str, Any], schema: dict[str, Any]) -> Iterator[tuple[str, Callable[[dict[str, Any]], None]]]:
    """Each property (and each property of a nested object) set to each bad value, one at a time."""
    for prop, prop_schema in _resolve(spec, schema).get("properties", {}).items():
        for value in BAD_VALUES:
            if prop == "is_admin" and value is True:
                continue  # valid, and it would leave extra admins on the shared server

            def set_top(body: dict[str, Any], prop: str = prop, value: Any = value) -> None:
                body[prop] = value

            yield f"{prop}={value!r:.20}", set_top
        for sub in _resolve(spec, prop_schema).get("properties", {}):
            for value in BAD_VALUES:

                def set_nested(body: dict[str, Any], prop: str = prop, sub: str = sub, value: Any = value) -> None:
                    body[prop] = {**(body.get(prop) or {}), sub: value}

                yield f"{prop}.{sub}={value!r:.20}", set_nested


def _request_schema(spec: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    body = spec["paths"][path][method].get("requestBody")
    return body["content"]["application/json"]["schema"] if body else None


def _check(client: httpx.Client, failures: list[str], label: str, method: str, url: str, **kwargs: Any) -> None:
    try:
        response = client.request(method.upper(), url, **kwargs)
    except httpx.TransportError as exc:  # the server dropped the connection: as bad as a 500
        failures.append(f"{label}: {exc!r}")
        return
    if not 400 <= response.status_code < 500 and response.status_code not in (200, 201, 204):
        failures.append(f"{label}: {response.status_code} {response.text[:120]}")


def test_bad_bodies_never_cause_a_server_error(server: RunningServer) -> None:
    spec = _openapi(server)
    with admin_client(server) as api:
        target = _Target(server, api)
    body_routes = [
        (m, p)
        for m, p in _operations(spec, "/")
        if p.startswith(("/v2/", "/auth/")) and m in BODY_METHODS and _request_schema(spec, m, p) is not None
    ]
    assert {(m, p) for m, p in body_routes if p.startswith("/v2")} >= set(target.routes)
    failures: list[str] = []
    tried = 0
    # no keep-alive: a failed request must not take the next one down with it
    with httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for method, path in body_routes:
            headers, base = target.routes.get((method, path), target.default)
            url = target.url(path)
            schema = _request_schema(spec, method, path)
            assert schema is not None
            for label, mutate in _mutations(spec, schema):
                body = base()
                mutate(body)
                tried += 1
                _check(client, failures, f"{method.upper()} {path} {label}", method, url, json=body, headers=headers)
            for raw in RAW_BODIES:
                tried += 1
                raw_headers = {**headers, "Content-Type": "application/json"}
                _check(
                    client,
                    failures,
                    f"{method.upper()} {path} raw {raw[:12]!r}",
                    method,
                    url,
                    content=raw,
                    headers=raw_headers,
                )
            _check(client, failures, f"{method.upper()} {path} form", method, url, data={"a": "b"}, headers=headers)
    assert tried > 500
    assert not failures, "\n".join(failures)


def test_out_of_range_ids_are_not_found(server: RunningServer) -> None:
    spec = _openapi(server)
    with admin_client(server) as api:
        target = _Target(server, api)
    with httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        failures: list[str] = []
        for method, path in _operations(spec):
            if "{" not in path:
                continue
            headers, base = target.routes.get((method, path), target.default)
            for bad in BAD_IDS:
                kwargs: dict[str, Any] = {"headers": headers}
                if method in BODY_METHODS:
                    kwargs["json"] = base()
                response = client.request(method.upper(), _fill(path, bad), **kwargs)
                if response.status_code not in (404, 422):
                    failures.append(f"{method.upper()} {_fill(path, bad)}: {response.status_code} {response.text[:80]}")
    assert not failures, "\n".join(failures)


# The id filters each list endpoint defines; other query parameters are ignored.
ID_FILTERS = {"/v2/model-instances": {"model_id", "worker_id"}, "/v2/model-files": {"worker_id"}}


@pytest.mark.parametrize(
    "params",
    [
        {"page": 10**20},
        {"page": 2**31},
        {"per_page": 10**20},
        {"perPage": 10**20},
        {"worker_id": 10**20},
        {"model_id": -(10**20)},
    ],
    ids=str,
)
@pytest.mark.parametrize("path", ["/v2/models", "/v2/workers", "/v2/model-instances", "/v2/users", "/v2/model-files"])
def test_out_of_range_query_numbers_are_rejected(server: RunningServer, path: str, params: dict[str, Any]) -> None:
    [key] = params
    with admin_client(server) as api:
        response = api.get(path, params=params)
    defined = key in ("page", "per_page", "perPage") or key in ID_FILTERS.get(path, set())
    assert response.status_code == (422 if defined else 200), response.text


def test_non_standard_json_constants_are_rejected(server: RunningServer) -> None:
    body = '{"name": "' + unique("nan") + '", "local_path": "/x", "replicas": NaN}'
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer(admin_key(server))) as client:
        response = client.post("/v2/models", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500


def test_nul_characters_in_text_fields(server: RunningServer) -> None:
    """PostgreSQL cannot store NUL: a 400 there; the other databases keep the text as sent."""
    name = unique("nul")
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer(admin_key(server))) as client:
        response = client.post("/v2/models", json={"name": name, "local_path": "/x", "description": "a\x00b"})
    assert 400 <= response.status_code < 500 or (
        response.status_code == 201 and response.json()["description"] == "a\x00b"
    ), response.text


def test_unicode_text_round_trips(server: RunningServer) -> None:
    text = "模型 — café 😀"
    with admin_client(server) as api:
        model = create_model(api, description=text, local_path=f"/models/{text}.gguf", env={"NOTE": text})
        fetched = api.get(f"/v2/models/{model['id']}").json()
    assert (fetched["description"], fetched["local_path"], fetched["env"]) == (
        text,
        f"/models/{text}.gguf",
        {"NOTE": text},
    )


def test_error_responses_are_gpustack_error_bodies(server: RunningServer) -> None:
    with admin_client(server) as api:
        for response in (
            api.get("/v2/models/2147483647"),
            api.post("/v2/models", json={}),
            api.get("/v2/no-such-route"),
            api.post("/v2/models", content=b"{", headers={"Content-Type": "application/json"}),
        ):
            assert response.headers["content-type"].startswith("application/json")
            body = json.loads(response.text)
            assert body["code"] == response.status_code and body["reason"] and body["message"], body
