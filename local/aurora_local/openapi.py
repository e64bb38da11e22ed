"""Generates the committed ``openapi.json`` from the code: never edit that file by hand, run ``make openapi``.

Source of truth, in order:
1. ``template.yaml``: which functions serve the HTTP API (their ``HttpApi`` events) and the gateway in front of them
   (JWT authorizer, throttling, stage).
2. Each of those functions' Powertools resolver (``functions/<name>/app.py``): routes, operation ids, parameters,
   pydantic models, declared responses, examples, links and the ``x-speakeasy-*`` extensions. Powertools'
   ``OpenAPIMerge`` joins the three micro-function resolvers into one document.
3. A small post-processing step, only for what Powertools cannot express; every rule is listed in
   :func:`post_process` with its reason.

The generator fails (instead of writing a wrong contract) when a template route has no matching operation or the
other way round, or when a schema still carries pydantic keywords that are not JSON Schema (``ge``/``le``...).

Usage: ``python -m aurora_local.openapi [--output openapi.json] [--check]``; ``--check`` exits 1 on drift.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aurora_local.template import ROOT, TEMPLATE, resources

OUTPUT = ROOT / "openapi.json"
TITLE = "Aurora Chats API"
VERSION = "1.0.0"
DESCRIPTION = (
    "The `chats` group of the Aurora Interactive chatbot SDK (`@aurora-interactive/chatbot-api-sdk`): list the "
    "caller's chats, start a chat with an AI character (who greets first), delete a chat with all of its history. "
    "Every id is a JSON integer in 1..2^53-1 (JavaScript's `Number.MAX_SAFE_INTEGER`). Errors are RFC 9457 "
    "problem details (`application/problem+json`)."
)
LOCAL_SERVER = "http://127.0.0.1:3000"
# The HTTP API serves from its `$default` stage: the routes are at the root of the URL, no stage segment.
DEPLOYED_SERVER = "https://{apiId}.execute-api.{region}.amazonaws.com"
# The production stack's HTTP API id (the `ApiUrl` output of `sam deploy --config-env prod`): the generated SDK's
# default server. Not known to this repository yet: replace it before publishing an SDK (README, "The generated SDK").
PRODUCTION_API_ID = "example"
PRODUCTION_REGION = "us-east-1"
PROBLEM_REF = "#/components/schemas/Problem"
# Powertools' own validation-error artefacts: our resolver answers those failures with problems instead.
POWERTOOLS_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
# Keywords pydantic leaves in a JSON schema when it cannot translate a constraint (e.g. a bound declared after a
# BeforeValidator). They are not JSON Schema, so a client would silently ignore the bound.
PYDANTIC_KEYWORDS = frozenset({"ge", "le", "gt", "lt", "min_length", "max_length", "multiple_of"})
NUMERIC_KEYWORDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})


class ContractError(RuntimeError):
    """The code and the template disagree, or the generated document would misdescribe the API."""


# ---------------------------------------------------------------- template


def api_routes(template: Path = TEMPLATE) -> dict[tuple[str, str], Path]:
    """``(METHOD, /path)`` of every ``HttpApi`` event in the template, mapped to its function's ``app.py``."""
    routes: dict[tuple[str, str], Path] = {}
    for name, resource in resources("AWS::Serverless::Function", template).items():
        props = resource.get("Properties", {})
        for event in props.get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            app = ROOT / props["CodeUri"] / "app.py"
            if not app.is_file():
                raise ContractError(f"{name}: {app} does not exist")
            routes[(event["Properties"]["Method"].upper(), event["Properties"]["Path"])] = app
    return routes


def _gateway(template: Path = TEMPLATE) -> dict[str, Any]:
    apis = resources("AWS::Serverless::HttpApi", template)
    if len(apis) != 1:
        raise ContractError(f"expected one AWS::Serverless::HttpApi in {template}, found {len(apis)}")
    ((_, api),) = apis.items()
    props: dict[str, Any] = api.get("Properties", {})
    return props


# ---------------------------------------------------------------- generation


def _merge(routes: dict[tuple[str, str], Path]) -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import Contact, HTTPBearer, Tag

    authorizer = _gateway().get("Auth", {}).get("DefaultAuthorizer")
    if not authorizer:
        raise ContractError(
            "the HTTP API has no default authorizer: the document's global security would lie"
        )
    merge = OpenAPIMerge(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        contact=Contact(name="Aurora Interactive API team", url="https://docs.aurora-interactive.dev/"),
        tags=[Tag(name="chats", description="Chats between a user and an AI character.")],
        security_schemes={
            "bearerAuth": HTTPBearer(
                bearerFormat="JWT",
                description=(
                    "A JWT from the identity provider, checked by the API's JWT authorizer "
                    f"(`{authorizer}`); its `sub` claim is the user."
                ),
            )
        },
        security=[{"bearerAuth": []}],
        on_conflict="error",
    )
    # OpenAPIMerge.discover() only recognises `app = APIGatewayHttpResolver(...)`; ours come from `create_app()`,
    # so the files are added explicitly, from the template (the deployed truth) rather than a glob.
    for app in dict.fromkeys(routes.values()):
        merge.add_file(app)
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    return document


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                yield method.upper(), path, operation


def _problem_response(status: int) -> dict[str, Any]:
    """The documented problem for ``status``, in JSON form (the same helper the routes use)."""
    from aurora_chats.api_docs import problem_responses

    response: dict[str, Any] = copy.deepcopy(dict(problem_responses(None, status)[status]))
    for media in response["content"].values():
        media.pop("model")
        media["schema"] = {"$ref": PROBLEM_REF}
    return {key: response[key] for key in ("description", "headers", "content") if key in response}


def _gateway_throttled() -> dict[str, Any]:
    return {
        "description": (
            "Too many requests: the API gateway's throttling limits were reached and the request was not "
            "processed. Retry after `Retry-After` seconds when the header is present, else back off."
        ),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying, when known.",
                "required": False,
                "schema": {"type": "integer", "minimum": 0, "examples": [1]},
            }
        },
    }


def _simplify_parameter(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    # An optional query/header parameter is absent, never null: `str | None = None` becomes `anyOf[str, null]`.
    variants = schema.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants and len(variants) == 2:
        (inner,) = [variant for variant in variants if variant != {"type": "null"}]
        del schema["anyOf"]
        schema.update({key: value for key, value in inner.items() if key not in schema})
    # Powertools lowercases header aliases (HTTP API v2 lowercases them on the wire); document the canonical name.
    if parameter.get("in") == "header" and str(schema.get("title", "")).lower() == parameter["name"]:
        parameter["name"] = schema["title"]
    # The parameter carries the description; the schema title is just the Python name capitalised.
    schema.pop("title", None)
    if schema.get("description") == parameter.get("description"):
        schema.pop("description", None)


def post_process(document: dict[str, Any], routes: dict[tuple[str, str], Path]) -> dict[str, Any]:
    """What Powertools cannot express, applied to the merged document (each rule says why)."""
    # Servers: the deployed API first - a generated SDK's default is servers[0] ("automatically selects the first
    # server URL": https://www.speakeasy.com/docs/sdks/customize/servers), so `new AuroraChatbotSDK()` must not call
    # localhost - then the local runtime (`serverIdx: 1`). No x-speakeasy-server-id: it would replace the seed SDK's
    # `serverIdx` option with `server`. Each variable becomes an SDK option (`new AuroraChatbotSDK({ apiId })`).
    document["servers"] = [
        {
            "url": DEPLOYED_SERVER,
            "description": "The deployed API (the `ApiUrl` output of `sam deploy`; `$default` stage, no stage path).",
            "variables": {
                "apiId": {
                    "default": PRODUCTION_API_ID,
                    "description": "The HTTP API id (the `ApiUrl` output of `sam deploy`).",
                },
                "region": {"default": PRODUCTION_REGION, "description": "The AWS region of the stack."},
            },
        },
        {"url": LOCAL_SERVER, "description": "Local runtime (`make run`): `serverIdx: 1` or `serverURL`."},
    ]
    throttled = bool(_gateway().get("DefaultRouteSettings", {}).get("ThrottlingRateLimit"))
    for _, _, operation in _operations(document):
        responses = operation["responses"]
        # Powertools always documents 422 for request validation; create_app() answers those with a 400 problem.
        responses.pop("422", None)
        # ...and overwrites a route's 500 with its ResponseValidationError; create_app() answers a problem there.
        responses["500"] = _problem_response(500)
        if throttled:
            # Answered by API Gateway (template DefaultRouteSettings), before any function runs.
            responses["429"] = _gateway_throttled()
        operation["responses"] = {code: responses[code] for code in sorted(responses)}
        for parameter in operation.get("parameters", []):
            _simplify_parameter(parameter)
    schemas = document.get("components", {}).get("schemas", {})
    for name in POWERTOOLS_ERROR_SCHEMAS:
        schemas.pop(name, None)
    for node in _walk(schemas):
        # pydantic titles every property with its capitalised Python name ("Chatid"): noise in generated SDKs.
        for prop in (node.get("properties") or {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
    _shape_for_the_sdk(document, schemas)
    for node in _walk(document):
        for key in NUMERIC_KEYWORDS & node.keys():
            # Powertools' OpenAPI models type bounds as floats: 9007199254740991.0 -> 9007199254740991.
            if isinstance(node[key], float) and node[key].is_integer():
                node[key] = int(node[key])
    _check(document, routes)
    return document


def _shape_for_the_sdk(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """What keeps a Speakeasy regeneration's seed signatures and type names (see ``aurora_chats.api_docs``).

    - ``x-speakeasy-ignore: true`` on the optional parameters of ``SDK_HIDDEN_PARAMETERS`` (Powertools has no
      parameter-level extensions): still documented and accepted, not method parameters of the SDK;
    - the success schemas of ``SDK_INLINE_SUCCESS`` inlined (title kept: Speakeasy names an inline type by its
      ``title``, https://www.speakeasy.com/docs/sdks/customize/data-model/types), and the then unused components
      dropped, so that a flat-format SDK returns ``operations.<OperationId>Response`` rather than ``components.*``.
    """
    from aurora_chats.api_docs import SDK_HIDDEN_PARAMETERS, SDK_INLINE_SUCCESS

    inlined: set[str] = set()
    for _, _, operation in _operations(document):
        operation_id = operation.get("operationId", "")
        for parameter in operation.get("parameters", []):
            if parameter["name"] in SDK_HIDDEN_PARAMETERS.get(operation_id, ()):
                if parameter.get("required"):
                    raise ContractError(f"{operation_id}: a required parameter cannot be hidden from the SDK")
                parameter["x-speakeasy-ignore"] = True
        if operation_id not in SDK_INLINE_SUCCESS:
            continue
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            media = response["content"]["application/json"]
            ref = media["schema"].get("$ref", "")
            name = ref.removeprefix("#/components/schemas/")
            if name not in schemas:
                raise ContractError(
                    f"{operation_id} {status}: expected a component schema, found {media['schema']}"
                )
            media["schema"] = copy.deepcopy(schemas[name])
            inlined.add(name)
    text = json.dumps(document)
    for name in sorted(inlined):
        if text.count(f'"#/components/schemas/{name}"') == 0:
            del schemas[name]


def _check(document: dict[str, Any], routes: dict[tuple[str, str], Path]) -> None:
    documented = {(method, path) for method, path, _ in _operations(document)}
    if documented != set(routes):
        raise ContractError(
            f"template routes and documented operations differ: only in template {sorted(set(routes) - documented)}"
            f", only in code {sorted(documented - set(routes))}"
        )
    text = json.dumps(document)
    for name in POWERTOOLS_ERROR_SCHEMAS:
        if f"/{name}" in text:
            raise ContractError(f"the document still references Powertools' {name}")
    for node in _walk(document):
        if "type" in node and isinstance(node.get("type"), str) and (PYDANTIC_KEYWORDS & node.keys()):
            raise ContractError(
                f"pydantic keywords {sorted(PYDANTIC_KEYWORDS & node.keys())} in schema {node}"
            )


def build_document() -> dict[str, Any]:
    routes = api_routes()
    return post_process(_merge(routes), routes)


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when --output differs from a fresh build"
    )
    args = parser.parse_args(argv)
    fresh = render(build_document())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != fresh:
            print(f"{args.output} is stale: run `make openapi` and commit it", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(fresh, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
