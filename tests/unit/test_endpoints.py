"""DynamoDB's share of botocore's ``endpoints.json`` (``aurora_chats.dal.endpoints``) and the DynamoDB client's loader
that serves it (``aurora_chats.dal.client``): the same document for DynamoDB, the same endpoints everywhere, and
botocore's own file whenever the cut could differ from it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import botocore
import pytest
from aurora_chats.dal import client as client_module
from aurora_chats.dal import endpoints
from botocore.loaders import JSONFileLoader, Loader
from botocore.regions import EndpointResolver
from botocore.session import get_session

BUILTIN_ENDPOINTS = str(Path(Loader.BUILTIN_DATA_PATH) / "endpoints")


def _builtin() -> dict[str, Any]:
    data: dict[str, Any] = JSONFileLoader().load_file(BUILTIN_ENDPOINTS)
    return data


def _dynamodb_loader() -> Any:
    session = get_session()
    return client_module._dynamodb_loader(session.get_component("data_loader"))


def _outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
    """What ``call`` answers, or the error it raises (the same error with the same message is the same answer)."""
    try:
        return call(*args, **kwargs)
    except Exception as error:
        return type(error), str(error)


def _endpoint(resolver: EndpointResolver, region: str, options: dict[str, bool]) -> Any:
    return _outcome(resolver.construct_endpoint, "dynamodb", region, **options)


def test_the_stored_cut_is_the_pinned_botocores() -> None:
    stored = json.loads(endpoints.DATA_FILE.read_text())
    assert stored["botocore"] == botocore.__version__, (
        "botocore was upgraded: run `python -m aurora_chats.dal.endpoints` (from shared/) and commit the file"
    )
    assert stored["endpoints"] == endpoints.dynamodb_only(_builtin()), (
        "the stored cut differs from the installed botocore's endpoints.json: run `python -m aurora_chats.dal.endpoints`"
    )


def test_the_cut_keeps_everything_but_the_other_services() -> None:
    full, cut = _builtin(), endpoints.dynamodb_only(_builtin())
    assert [p["partition"] for p in cut["partitions"]] == [p["partition"] for p in full["partitions"]]
    for whole, part in zip(full["partitions"], cut["partitions"], strict=True):
        assert set(part["services"]) == {"dynamodb"}
        assert part["services"]["dynamodb"] == whole["services"]["dynamodb"]
        assert {k: v for k, v in part.items() if k != "services"} == {
            k: v for k, v in whole.items() if k != "services"
        }
    assert {k: v for k, v in cut.items() if k != "partitions"} == {
        k: v for k, v in full.items() if k != "partitions"
    }


def test_dynamodb_resolves_to_the_same_endpoint_in_every_region_and_variant() -> None:
    full = EndpointResolver(_builtin(), uses_builtin_data=True)
    cut = EndpointResolver(endpoints.dynamodb_only(_builtin()), uses_builtin_data=True)
    regions = [region for p in _builtin()["partitions"] for region in p["regions"]]
    regions += ["local", "us-east-9", "cn-west-9", "eu-isoe-west-9", "not-a-region"]
    for partition in full.get_available_partitions():
        assert cut.get_available_endpoints("dynamodb", partition) == full.get_available_endpoints(
            "dynamodb", partition
        )
        assert cut.get_available_endpoints(
            "dynamodb", partition, allow_non_regional=True
        ) == full.get_available_endpoints("dynamodb", partition, allow_non_regional=True)
        assert cut.get_partition_dns_suffix(partition) == full.get_partition_dns_suffix(partition)
    for region in regions:
        assert _outcome(cut.get_partition_for_region, region) == _outcome(
            full.get_partition_for_region, region
        )
        for fips in (False, True):
            for dualstack in (False, True):
                options = {"use_fips_endpoint": fips, "use_dualstack_endpoint": dualstack}
                assert _endpoint(cut, region, options) == _endpoint(full, region, options), (region, options)


def test_the_clients_loader_serves_the_cut_from_botocores_own_path() -> None:
    loader = _dynamodb_loader()
    data, path = loader.load_data_with_path("endpoints")
    assert path == BUILTIN_ENDPOINTS
    assert loader.is_builtin_path(path)
    assert data == endpoints.load(botocore.__version__) == endpoints.dynamodb_only(_builtin())
    assert all(set(partition["services"]) == {"dynamodb"} for partition in data["partitions"])
    # Every other document is botocore's own.
    assert loader.load_data_with_path("partitions") == Loader().load_data_with_path("partitions")


def test_a_client_of_the_cut_has_the_endpoint_and_signer_of_a_plain_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for region in ("us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1", "us-iso-east-1"):
        for fips in (False, True):
            config = botocore.config.Config(use_fips_endpoint=fips)
            plain = get_session().create_client("dynamodb", region_name=region, config=config)
            session = get_session()
            session.register_component("data_loader", _dynamodb_loader())
            ours = session.create_client("dynamodb", region_name=region, config=config)
            assert ours.meta.endpoint_url == plain.meta.endpoint_url, (region, fips)
            assert ours.meta.region_name == plain.meta.region_name
            assert ours.meta.partition == plain.meta.partition
            assert ours._request_signer._signing_name == plain._request_signer._signing_name  # type: ignore[attr-defined]
            assert ours._request_signer._region_name == plain._request_signer._region_name  # type: ignore[attr-defined]


def test_botocores_own_file_is_loaded_for_another_version_or_a_customer_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert endpoints.load("0.0.0") is None
    monkeypatch.setattr(botocore, "__version__", "0.0.0")
    data, path = _dynamodb_loader().load_data_with_path("endpoints")
    assert path == BUILTIN_ENDPOINTS
    assert data == _builtin()
    monkeypatch.undo()
    # AWS_DATA_PATH (a search path before botocore's own) with its own endpoints.json: that file, as botocore would.
    custom = {"partitions": [], "version": 3}
    (tmp_path / "endpoints.json").write_text(json.dumps(custom))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    session = get_session()
    data, path = client_module._dynamodb_loader(session.get_component("data_loader")).load_data_with_path(
        "endpoints"
    )
    assert path == os.path.join(str(tmp_path), "endpoints")
    assert data == custom


def test_the_services_client_never_parses_botocores_endpoints_file(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    original = JSONFileLoader.load_file

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        loaded.append(file_path)
        return original(self, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", load_file)
    client_module.reset_client()
    try:
        client = client_module.get_client()
        assert client.meta.service_model.service_name == "dynamodb"
    finally:
        client_module.reset_client()
    assert any(path.endswith("service-2") for path in loaded)  # the recorder saw the client's loads
    assert BUILTIN_ENDPOINTS not in loaded
