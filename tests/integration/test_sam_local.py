"""The real SAM CLI's view of the project: the committed env file, the stage, and the start-api token check.

What runs under SAM (``make sam-local-test``) is checked end to end there; these tests pin the parts that keep the
deployed stack unchanged: deployed routes are authorised by the JWT authorizer only, the endpoint override is empty,
and the local token check exists only in the derived template.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from aurora_local import auth as local_auth
from aurora_local.intrinsics import Resolver
from aurora_local.sam_local import AUTH_HANDLER, AUTH_LAYER_DIR, AUTH_LAYER_ID, ENV_FILE, derive
from aurora_local.template import load_template, resources

from tests.support.env import ROOT

sys.path.insert(0, str(AUTH_LAYER_DIR / "python"))
import aurora_sam_auth

# make token's documented default secret is short on purpose (it signs local test tokens only).
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

API_FUNCTIONS = {"ListChatsFunction", "InitializeChatFunction", "DeleteChatFunction"}


def _variables(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        **load_template()["Globals"]["Function"]["Environment"]["Variables"],
        **(((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}),
    }


def test_deployed_routes_are_authorised_by_the_jwt_authorizer_only() -> None:
    template = load_template()
    api = resources("AWS::Serverless::HttpApi")
    assert list(api) == ["ChatsApi"]
    auth = api["ChatsApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "JwtAuthorizer"
    assert list(auth["Authorizers"]) == ["JwtAuthorizer"]
    assert set(auth["Authorizers"]["JwtAuthorizer"]) == {
        "IdentitySource",
        "JwtConfiguration",
    }  # no Lambda one
    routes = 0
    for name, function in resources("AWS::Serverless::Function").items():
        props = function["Properties"]
        assert props["Handler"] == "app.handler", name  # never the sam-local token check
        for event in props.get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes += 1
                assert event["Properties"]["ApiId"] == {"Ref": "ChatsApi"}
                assert "Auth" not in event["Properties"], f"{name}: a route may not opt out of the authorizer"
        assert "LOCAL_JWT_SECRET" not in _variables(function)
        assert "AURORA_SAM_HANDLER" not in _variables(function)
    assert routes == 4  # GET /chats, GET /chats/pages (the same function), POST initialize, DELETE
    text = (ROOT / "template.yaml").read_text()
    assert "sam_auth" not in text and "aurora_sam_auth" not in text and AUTH_LAYER_ID not in text
    assert "AWS::Lambda::Permission" not in json.dumps(template)  # no other way in than the API's own


def test_the_api_is_served_at_the_sdks_paths() -> None:
    """The `$default` stage: no stage segment in front of /chats (what the SDK and `sam local start-api` call)."""
    props = resources("AWS::Serverless::HttpApi")["ChatsApi"]["Properties"]
    assert props["StageName"] == "$default"
    url = load_template()["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    assert url == "https://${ChatsApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"


def test_deployed_functions_get_no_endpoint_override_and_no_placeholders() -> None:
    for name, function in resources("AWS::Serverless::Function").items():
        variables = _variables(function)
        assert variables["AWS_ENDPOINT_URL_DYNAMODB"] == "", name
        # A primary stack (ExistingTableName empty): its own table and secret. A second region's: test_template.
        decide = Resolver(load_template(), "t").decide
        assert decide(variables["TABLE_NAME"]) == {"Ref": "ChatsTable"}
        assert decide(variables["CURSOR_SECRET"]) == {
            "Fn::Sub": "{{resolve:secretsmanager:${CursorSecret}:SecretString}}"
        }
        assert not [
            k for k in variables if k.startswith("AWS_ENDPOINT_URL") and k != "AWS_ENDPOINT_URL_DYNAMODB"
        ]


def test_botocore_reads_an_empty_endpoint_override_as_none() -> None:
    """What a deployed function gets: AWS_ENDPOINT_URL_DYNAMODB="" -> the regional endpoint."""
    code = "from aurora_chats.dal.client import get_client; import sys; sys.stdout.write(get_client().meta.endpoint_url)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    for value, expected in (
        ("", "https://dynamodb.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9"),
    ):
        env.update(AWS_ENDPOINT_URL_DYNAMODB=value, AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1")
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
        assert out == expected


def test_env_file_sets_only_declared_variables_and_points_at_the_local_dynamodb() -> None:
    parameters = json.loads(ENV_FILE.read_text())["Parameters"]
    built = load_template()
    derived = derive(built)
    declared: set[str] = set()
    for resource in derived["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            declared |= set(_variables(resource))
    assert set(parameters) <= declared
    assert parameters["AWS_ENDPOINT_URL_DYNAMODB"] == "http://host.docker.internal:8000"
    assert parameters["TABLE_NAME"] == "aurora-chats-local"  # make run's table
    assert parameters["CURSOR_SECRET"] == "local-dev-cursor-secret"  # make run's, so its cursors work here
    assert parameters["LOCAL_JWT_SECRET"] == local_auth.DEFAULT_SECRET  # make token's


def test_derived_template_puts_the_token_check_in_front_of_the_api_functions_only() -> None:
    built = load_template()
    derived = derive(built)
    assert built == load_template()  # the source is untouched
    changed = {
        name
        for name, resource in derived["Resources"].items()
        if name in built["Resources"] and resource != built["Resources"][name]
    }
    assert changed == API_FUNCTIONS
    for name in API_FUNCTIONS:
        props = derived["Resources"][name]["Properties"]
        assert props["Handler"] == AUTH_HANDLER
        assert props["Environment"]["Variables"]["AURORA_SAM_HANDLER"] == "app.handler"
        assert props["Layers"] == [{"Ref": "SharedLayer"}, {"Ref": AUTH_LAYER_ID}]
    assert set(derived["Resources"]) - set(built["Resources"]) == {AUTH_LAYER_ID}
    with pytest.raises(ValueError, match="already"):
        derive(derived)


def _event(authorization: str | None = None, **context: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "list_chats.json").read_text())
    event["headers"] = {k: v for k, v in event["headers"].items() if k.lower() != "authorization"}
    if authorization is not None:
        event["headers"]["Authorization"] = authorization
    event["requestContext"].update(context)
    return event


def test_a_make_token_token_gets_the_claims_api_gateway_would_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCAL_JWT_SECRET", raising=False)
    token = local_auth.issue_token("alice", "Alice", scope="chats:read chats:write", n=3)
    claims, scopes = local_auth.authorize(f"Bearer {token}")  # make run's authorizer emulation
    out = aurora_sam_auth.with_identity(_event(f"Bearer {token}"), local_auth.DEFAULT_SECRET)
    assert out["requestContext"]["authorizer"] == {"jwt": {"claims": claims, "scopes": scopes}}
    assert claims["sub"] == "alice" and claims["n"] == "3"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer not-a-token",
        "Bearer " + local_auth.issue_token("alice", lifetime_seconds=-5),  # expired
        "Bearer " + local_auth.issue_token("alice", nbf=int(time.time()) + 600),  # not yet valid
        "Bearer " + local_auth.issue_token("alice")[:-2] + "xx",  # bad signature
        "Bearer e30.eyJzdWIiOiJhbGljZSJ9.",  # alg none
    ],
)
def test_a_missing_or_bad_token_reaches_the_function_without_identity(authorization: str | None) -> None:
    forged = {"jwt": {"claims": {"sub": "mallory"}, "scopes": None}}
    out = aurora_sam_auth.with_identity(_event(authorization, authorizer=forged), local_auth.DEFAULT_SECRET)
    assert "authorizer" not in out["requestContext"]


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = local_auth.issue_token("alice")
    assert aurora_sam_auth.verified_claims(f"Bearer {token}", "another-secret") is None
    assert aurora_sam_auth.verified_claims(f"Bearer {token}", local_auth.DEFAULT_SECRET) is not None


def test_the_wrapped_function_answers_401_problem_without_a_token(
    monkeypatch: pytest.MonkeyPatch, api: Any
) -> None:
    monkeypatch.setenv("AURORA_SAM_HANDLER", "app.handler")
    monkeypatch.setattr(aurora_sam_auth, "_handler", None)
    from tests.support.context import FakeContext
    from tests.support.loader import load_function

    module = load_function("list_chats")
    monkeypatch.setitem(sys.modules, "app", module)
    result = aurora_sam_auth.handler(_event(None), FakeContext())
    assert result["statusCode"] == 401
    assert result["headers"]["Content-Type"] == "application/problem+json"
    token = local_auth.issue_token("alice")
    assert aurora_sam_auth.handler(_event(f"Bearer {token}"), FakeContext())["statusCode"] == 200


def test_the_auth_layer_uses_the_standard_library_only() -> None:
    tree = ast.parse((AUTH_LAYER_DIR / "python" / "aurora_sam_auth.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}
