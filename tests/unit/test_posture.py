"""Production posture in template.yaml: logs kept and bounded, access logs without secrets, bounded cleanup, throttling.

The scanners (cfn-lint with AWS's serverless rules, checkov) run in ``make lint-iac``; these tests pin what they
cannot read: what the access log line holds, which group each function logs to, and the numbers that bound a storm.
"""

from __future__ import annotations

import json
import re

from aurora_local.template import load_template, resources

FUNCTIONS = {
    "ListChatsFunction": "ListChatsLogGroup",
    "InitializeChatFunction": "InitializeChatLogGroup",
    "DeleteChatFunction": "DeleteChatLogGroup",
    "ChatCleanupFunction": "ChatCleanupLogGroup",
}


def test_every_function_logs_to_its_own_group_with_the_retention_parameter() -> None:
    template = load_template()
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    groups = resources("AWS::Logs::LogGroup")
    for function, group in FUNCTIONS.items():
        config = resources()[function]["Properties"]["LoggingConfig"]
        assert config == {
            "LogGroup": {"Ref": group},
            "LogFormat": "Text",
        }  # Powertools writes the JSON itself
        assert groups[group]["Properties"] == {"RetentionInDays": {"Ref": "LogRetentionDays"}}
    assert len(set(FUNCTIONS.values())) == len(FUNCTIONS)


def test_access_logs_are_one_json_line_per_request_without_secrets() -> None:
    settings = resources()["ChatsApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert resources()["ApiAccessLogGroup"]["Properties"] == {"RetentionInDays": {"Ref": "LogRetentionDays"}}
    line = settings["Format"]
    assert "\n" not in line
    fields = json.loads(re.sub(r"\$context\.[A-Za-z.]+", "x", line))
    assert {
        "requestId",
        "routeKey",
        "status",
        "latencyMs",
        "integrationError",
        "sourceIp",
        "userAgent",
    } <= set(fields)
    variables = set(re.findall(r"\$context\.([A-Za-z.]+)", line))
    assert {
        "requestId",
        "routeKey",
        "status",
        "responseLatency",
        "integrationErrorMessage",
        "identity.sourceIp",
        "identity.userAgent",
    } <= variables
    lowered = line.lower()
    assert "authorization" not in lowered and "$request" not in lowered  # no header, query or body value
    assert "querystring" not in lowered and "path" not in variables  # no query strings (cursors)


def test_the_cleanup_function_cannot_take_the_accounts_concurrency() -> None:
    template = load_template()
    parameter = template["Parameters"]["CleanupConcurrency"]
    assert parameter["Default"] == 10 and parameter["MaxValue"] <= 500  # well below the account's 1,000
    cleanup = resources()["ChatCleanupFunction"]["Properties"]
    assert cleanup["ReservedConcurrentExecutions"] == {"Ref": "CleanupConcurrency"}
    for function in FUNCTIONS.keys() - {"ChatCleanupFunction"}:  # throttled upstream by the API instead
        assert "ReservedConcurrentExecutions" not in resources()[function]["Properties"]


def test_initialize_is_throttled_below_the_cheaper_routes() -> None:
    api = resources()["ChatsApi"]["Properties"]
    default = api["DefaultRouteSettings"]
    initialize = api["RouteSettings"]["POST /characters/{characterId}/chats"]
    assert initialize["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
    assert initialize["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]
    routes = {
        f"{e['Properties']['Method']} {e['Properties']['Path']}"
        for fn in resources("AWS::Serverless::Function").values()
        for e in fn["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    }
    assert set(api["RouteSettings"]) <= routes  # a typo in a route key would throttle nothing


def test_every_scanner_suppression_has_a_reason() -> None:
    for name, resource in resources().items():
        metadata = resource.get("Metadata") or {}
        for skip in (metadata.get("checkov") or {}).get("skip", []):
            assert set(skip) == {"id", "comment"} and len(skip["comment"]) > 60, f"{name}: {skip}"
        ignored = ((metadata.get("cfn-lint") or {}).get("config") or {}).get("ignore_checks", [])
        assert set(ignored) <= {"WS1004", "ES6000"}, f"{name}: {ignored} needs a reason in the template"
