"""GPUStack 2.3.0's OpenAPI document as a test oracle: validates requests and responses against it."""

import gzip
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REFERENCE = Path(__file__).resolve().parents[1] / "contract" / "gpustack-2.3.0-openapi.json.gz"
_DOC_URI = "urn:gpustack-openapi"
METHODS = ("get", "post", "put", "patch", "delete")


@cache
def document() -> dict[str, Any]:
    with gzip.open(REFERENCE) as f:
        return json.load(f)  # type: ignore[no-any-return]


@cache
def _registry() -> Registry:
    return Registry().with_resource(_DOC_URI, Resource.from_contents(document(), default_specification=DRAFT202012))


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """(regex, template) for every path of the document; literal paths before parameterised ones."""
    out = []
    for template in document()["paths"]:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(f"^{pattern}$"), template))
    return sorted(out, key=lambda item: item[1].count("{"))


def template_of(path: str) -> str | None:
    for pattern, template in _templates():
        if pattern.match(path):
            return template
    return None


def operation(method: str, template: str) -> dict[str, Any] | None:
    return document()["paths"].get(template, {}).get(method.lower())  # type: ignore[no-any-return]


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    wrapped = {"$ref": f"{_DOC_URI}#{schema['$ref'][1:]}"} if "$ref" in schema else schema
    return Draft202012Validator(_rewrite_refs(wrapped), registry=_registry())


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (_DOC_URI + v if k == "$ref" and v.startswith("#") else _rewrite_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def violations(schema: dict[str, Any], instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in _validator(schema).iter_errors(instance)
    ]


def response_schema(method: str, template: str, status: int) -> dict[str, Any] | None:
    op = operation(method, template)
    if op is None:
        return None
    responses = op.get("responses", {})
    # GPUStack answers every success with 200; this server's 201 (created) carries the same body
    answer = responses.get(str(status)) or (responses.get("200") if 200 <= status < 300 else None)
    if answer is None:
        return None
    return answer.get("content", {}).get("application/json", {}).get("schema")  # type: ignore[no-any-return]


def request_schema(method: str, template: str) -> dict[str, Any] | None:
    op = operation(method, template)
    content = (op or {}).get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")  # type: ignore[no-any-return]


@dataclass
class ContractLog:
    """What a test session sent: the operations of the document it exercised, and its extensions."""

    checked: set[tuple[str, str]] = field(default_factory=set)
    extensions: set[tuple[str, str]] = field(default_factory=set)


LOG = ContractLog()


def check_exchange(response: httpx.Response, *, requests: bool = True) -> list[str]:
    """Violations of the document by one request/response pair (none for paths the document lacks);
    `requests=False` checks the answer only (this project's own forms of a request are extensions)."""
    request = response.request
    method, path = request.method.lower(), request.url.path
    template = template_of(path)
    if template is None or operation(method, template) is None:
        LOG.extensions.add((method.upper(), path))
        return []
    LOG.checked.add((method.upper(), template))
    problems = []
    body_schema = request_schema(method, template)
    is_json = request.headers.get("content-type", "").startswith("application/json")
    # a request the server accepted must be one GPUStack's document allows (refused ones are often on purpose)
    if requests and body_schema and is_json and request.content and response.is_success:
        problems += [f"request {e}" for e in violations(body_schema, json.loads(request.content))]
    if request.url.params.get("watch") == "true":
        return problems
    schema = response_schema(method, template, response.status_code)
    if schema and response.headers.get("content-type", "").startswith("application/json"):
        response.read()
        problems += [f"response {e}" for e in violations(schema, response.json())]
    return [f"{method.upper()} {path} ({template}) {response.status_code}: {p}" for p in problems]


def assert_contract(response: httpx.Response) -> None:
    """An httpx response hook: fails the request when either side breaks GPUStack's document."""
    problems = check_exchange(response)
    assert not problems, "GPUStack contract broken:\n" + "\n".join(problems)


def assert_response_contract(response: httpx.Response) -> None:
    """As `assert_contract`, for the answer only."""
    problems = check_exchange(response, requests=False)
    assert not problems, "GPUStack contract broken:\n" + "\n".join(problems)


def contract_client(base_url: str, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30, event_hooks={"response": [assert_contract]}, **kwargs)


def missing_operations(served: set[tuple[str, str]]) -> list[str]:
    """Operations of the document (outside the resources this project leaves out) that `served` lacks."""
    out = []
    for template, ops in document()["paths"].items():
        for method in ops:
            if method in METHODS and (method.upper(), template) not in served:
                out.append(f"{method.upper()} {template}")
    return out
