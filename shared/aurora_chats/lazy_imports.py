"""Lazy ``__init__`` for two Powertools packages whose ``__init__`` imports far more than a function uses.

``aws_lambda_powertools.event_handler``'s ``__init__`` imports every resolver (AppSync and its ``asyncio``, AppSync
events, Bedrock agents, VPC Lattice, function URLs, the ``http_resolver``), and
``aws_lambda_powertools.utilities.data_classes``'s imports the event class of every AWS service, though an API
function uses one resolver and one event class. :func:`install` puts a stand-in for each package into
``sys.modules`` before its first import: the real package's ``__path__``, ``__spec__`` and ``__all__``, and a
PEP 562 ``__getattr__`` that imports the one submodule defining a name on first access - the same objects under the
same names, loaded when asked for (as Powertools did for its parser, aws-powertools/powertools-lambda-python#8405).
Submodules import as always (``from aws_lambda_powertools.event_handler.api_gateway import ...``).

The tables below mirror the real ``__init__``\\s of the Powertools version in :data:`VERIFIED_VERSION`
(``tests/unit/test_lazy_imports.py`` compares them with the installed package's source and objects, and fails on an
upgrade until they are checked again); with any other version, or when a package is already imported,
:func:`install` leaves Powertools as it is.
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import PathFinder
from types import ModuleType
from typing import Any

VERIFIED_VERSION = "3.37.0"

# package -> {submodule (relative to the package): names the real __init__ imports from it}
EXPORTS: dict[str, dict[str, tuple[str, ...]]] = {
    "aws_lambda_powertools.event_handler": {
        "api_gateway": (
            "ALBResolver",
            "APIGatewayHttpResolver",
            "ApiGatewayResolver",
            "APIGatewayRestResolver",
            "CORSConfig",
            "Response",
        ),
        "appsync": ("AppSyncResolver",),
        "bedrock_agent": ("BedrockAgentResolver", "BedrockResponse"),
        "bedrock_agent_function": ("BedrockAgentFunctionResolver", "BedrockFunctionResponse"),
        "depends": ("DependencyResolutionError", "Depends"),
        "events_appsync.appsync_events": ("AppSyncEventsResolver",),
        "http_resolver": ("HttpResolver", "HttpResolverLocal"),
        "lambda_function_url": ("LambdaFunctionUrlResolver",),
        "request": ("Request",),
        "vpc_lattice": ("VPCLatticeResolver", "VPCLatticeV2Resolver"),
    },
    "aws_lambda_powertools.utilities.data_classes": {
        "alb_event": ("ALBEvent",),
        "api_gateway_proxy_event": ("APIGatewayProxyEvent", "APIGatewayProxyEventV2"),
        "api_gateway_websocket_event": ("APIGatewayWebSocketEvent",),
        "appsync_resolver_event": ("AppSyncResolverEvent",),
        "appsync_resolver_events_event": ("AppSyncResolverEventsEvent",),
        "aws_config_rule_event": ("AWSConfigRuleEvent",),
        "bedrock_agent_event": ("BedrockAgentEvent",),
        "bedrock_agent_function_event": ("BedrockAgentFunctionEvent",),
        "cloud_watch_alarm_event": (
            "CloudWatchAlarmConfiguration",
            "CloudWatchAlarmData",
            "CloudWatchAlarmEvent",
            "CloudWatchAlarmMetric",
            "CloudWatchAlarmMetricStat",
            "CloudWatchAlarmState",
        ),
        "cloud_watch_custom_widget_event": ("CloudWatchDashboardCustomWidgetEvent",),
        "cloud_watch_logs_event": ("CloudWatchLogsEvent",),
        "cloudformation_custom_resource_event": ("CloudFormationCustomResourceEvent",),
        "code_deploy_lifecycle_hook_event": ("CodeDeployLifecycleHookEvent",),
        "code_pipeline_job_event": ("CodePipelineJobEvent",),
        "connect_contact_flow_event": ("ConnectContactFlowEvent",),
        "dynamo_db_stream_event": ("DynamoDBStreamEvent",),
        "event_bridge_event": ("EventBridgeEvent",),
        "event_source": ("event_source",),
        "kafka_event": ("KafkaEvent",),
        "kinesis_firehose_event": (
            "KinesisFirehoseDataTransformationRecord",
            "KinesisFirehoseDataTransformationRecordMetadata",
            "KinesisFirehoseDataTransformationResponse",
            "KinesisFirehoseEvent",
        ),
        "kinesis_stream_event": ("KinesisStreamEvent",),
        "lambda_function_url_event": ("LambdaFunctionUrlEvent",),
        "s3_batch_operation_event": (
            "S3BatchOperationEvent",
            "S3BatchOperationResponse",
            "S3BatchOperationResponseRecord",
        ),
        "s3_event": ("S3Event", "S3EventBridgeNotificationEvent"),
        "secrets_manager_event": ("SecretsManagerEvent",),
        "ses_event": ("SESEvent",),
        "sns_event": ("SNSEvent",),
        "sqs_event": ("SQSEvent", "SQSRecord"),
        "transfer_family_event": ("TransferFamilyAuthorizer", "TransferFamilyAuthorizerResponse"),
        "vpc_lattice": ("VPCLatticeEvent", "VPCLatticeEventV2"),
    },
}


class LazyPackage(ModuleType):
    """A package whose exports are imported on first access (PEP 562), as if its real ``__init__`` had run."""

    _lazy_sources: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        source = self._lazy_sources.get(name)
        if source is None:
            if name.startswith("__"):
                raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
            # The real __init__ leaves every submodule it loads bound on the package: import one when asked.
            try:
                return importlib.import_module(f"{self.__name__}.{name}")
            except ModuleNotFoundError as missing:
                if missing.name != f"{self.__name__}.{name}":
                    raise
                raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(source), name)
        ModuleType.__setattr__(self, name, value)  # from now on a plain attribute
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule binds it on its package. Where the real __init__ rebinds that name to what the
        # submodule defines (``data_classes.event_source`` is the decorator, not its module), keep the definition.
        if (
            isinstance(value, ModuleType)
            and self._lazy_sources.get(name) == value.__name__
            and hasattr(value, name)
        ):
            value = getattr(value, name)
        ModuleType.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._lazy_sources))


def _lazy_package(name: str, exports: dict[str, tuple[str, ...]]) -> LazyPackage | None:
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name)
    spec = PathFinder.find_spec(name, list(parent.__path__))
    if spec is None or spec.submodule_search_locations is None:
        return None
    module = LazyPackage(name)
    ModuleType.__setattr__(module, "_lazy_sources", {})
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__file__ = spec.origin
    module.__cached__ = spec.cached
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = name
    module.__all__ = [export for names in exports.values() for export in names]
    for submodule, names in exports.items():
        for export in names:
            module._lazy_sources[export] = f"{name}.{submodule}"
    sys.modules[name] = module
    setattr(parent, child, module)
    return module


def install() -> bool:
    """Put the lazy stand-ins in place; False (and Powertools left as it is) when the installed Powertools is not
    :data:`VERIFIED_VERSION` or one of the packages is already imported."""
    if any(name in sys.modules for name in EXPORTS):
        return all(isinstance(sys.modules.get(name), LazyPackage) for name in EXPORTS)
    from aws_lambda_powertools.shared.version import VERSION

    if VERSION != VERIFIED_VERSION:
        return False
    return all(_lazy_package(name, exports) is not None for name, exports in EXPORTS.items())
