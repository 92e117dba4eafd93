"""The MLflow REST adapter's requests and its reading of the answers, against an in-process fake server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from console.adapters import mlflow_rest
from console.adapters.mlflow_rest import MlflowRestRegistry, is_rest_uri
from console.config import Config, RegistryConfig
from console.domain.errors import ConflictError, NotFoundError, RegistryError
from console.wiring import build_registry

URL = "http://mlflow.test:5000"
MODEL = "fraud-detector"


class FakeMlflow:
    """The registry endpoints Rewind uses, answering as ``mlflow server`` 3.x does (checked against one)."""

    def __init__(self) -> None:
        self.aliases = {"champion": "2", "challenger": "3"}
        self.tags: dict[str, dict[str, str]] = {"1": {}, "2": {"rewind.previous_champion": "1"}, "3": {}}
        self.requests: list[httpx.Request] = []
        self.page_size = 2
        # Called after a write is applied, before its answer: another writer acting under Rewind.
        self.after_write: Callable[[], None] | None = None

    def version(self, number: str) -> dict:
        return {"name": MODEL, "version": number, "creation_timestamp": 1796657156000 + int(number),
                "current_stage": "None", "source": f"models:/m-{number}", "run_id": f"run{number}",
                "status": "READY", "description": f"v{number}", "run_link": "",
                "tags": [{"key": k, "value": v} for k, v in self.tags[number].items()]}

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/api/2.0/mlflow/")
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        body = json.loads(request.content) if request.content else {}
        args = query | body
        missing_model = httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST",
                                                  "message": f"Registered Model with name={args.get('name')} "
                                                             "not found"})
        if not request.url.path.startswith("/api/2.0/mlflow/"):
            return httpx.Response(404, text="<!doctype html><title>404 Not Found</title>")
        if args.get("name") not in (MODEL, None):
            return missing_model
        if (request.method, path) == ("GET", "registered-models/get"):
            return httpx.Response(200, json={"registered_model": {
                "name": MODEL, "aliases": [{"alias": a, "version": v} for a, v in self.aliases.items()]}})
        if (request.method, path) == ("GET", "model-versions/search"):
            numbers = sorted(self.tags, reverse=True)
            if args["filter"].startswith("tags."):
                key, value = args["filter"][len("tags.`"):].split("` = ")
                numbers = [n for n in numbers if self.tags[n].get(key) == value.strip("'")]
            start = int(args.get("page_token", 0))
            page: dict = {"model_versions": [self.version(n) for n in numbers[start:start + self.page_size]]}
            if start + self.page_size < len(numbers):
                page["next_page_token"] = str(start + self.page_size)
            return httpx.Response(200, json=page)
        if (request.method, path) == ("GET", "model-versions/get"):
            if args["version"] not in self.tags:
                return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST",
                                                 "message": f"Model Version (name={MODEL}, version=9) not found"})
            return httpx.Response(200, json={"model_version": self.version(args["version"])})
        if path == "registered-models/alias":
            alias = args["alias"]
            if request.method == "GET":
                if alias not in self.aliases:
                    return httpx.Response(400, json={"error_code": "INVALID_PARAMETER_VALUE",
                                                     "message": f"Registered model alias {alias} not found."})
                return httpx.Response(200, json={"model_version": self.version(self.aliases[alias])})
            if request.method == "POST":
                self.aliases[alias] = args["version"]
            else:
                self.aliases.pop(alias, None)
            return self._written()
        if (request.method, path) == ("POST", "model-versions/set-tag"):
            self.tags[args["version"]][args["key"]] = args["value"]
            return self._written()
        if (request.method, path) == ("DELETE", "model-versions/delete-tag"):
            self.tags[args["version"]].pop(args["key"], None)
            return self._written()
        return httpx.Response(404, text="<!doctype html>")

    def _written(self) -> httpx.Response:
        if self.after_write is not None:
            self.after_write()
        return httpx.Response(200, json={})

    def writes(self) -> list[tuple[str, str, dict]]:
        return [(r.method, r.url.path.removeprefix("/api/2.0/mlflow/"), json.loads(r.content))
                for r in self.requests if r.method != "GET"]


@pytest.fixture
def fake() -> FakeMlflow:
    return FakeMlflow()


@pytest.fixture
def registry(fake) -> MlflowRestRegistry:
    return MlflowRestRegistry(URL, transport=httpx.MockTransport(fake.handler), environ={})


def test_versions_come_oldest_first_with_aliases_tags_and_times_across_pages(registry, fake):
    versions = registry.list_versions(MODEL)
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert [v.aliases for v in versions] == [(), ("champion",), ("challenger",)]
    assert versions[1].tags == {"rewind.previous_champion": "1"}
    assert versions[0].run_id == "run1" and versions[0].created_at.year == 2026 and versions[0].status == "READY"
    searches = [r for r in fake.requests if r.url.path.endswith("model-versions/search")]
    assert len(searches) == 2  # three versions, pages of two: the next_page_token was followed
    assert parse_qs(searches[0].url.query.decode())["filter"] == [f"name='{MODEL}'"]


def test_alias_reads(registry):
    assert registry.get_aliases(MODEL).aliases == {"champion": "2", "challenger": "3"}
    assert registry.get_alias(MODEL, "champion") == "2"
    assert registry.get_alias(MODEL, "nope") is None  # MLflow answers 400 for an unset alias
    with pytest.raises(NotFoundError, match=r"MLflow registry at http://mlflow.test:5000: .*name=other not found"):
        registry.get_alias("other", "champion")
    with pytest.raises(NotFoundError):
        registry.list_versions("other")


def test_set_alias_compares_writes_and_reads_back(registry, fake):
    assert registry.set_alias(MODEL, "champion", "1", expected="2") == "1"
    assert fake.writes() == [("POST", "registered-models/alias", {"name": MODEL, "alias": "champion", "version": "1"})]
    assert fake.aliases["champion"] == "1"
    # Already there: nothing written, the read-back still made.
    assert registry.set_alias(MODEL, "champion", "1", expected="2") == "1"
    assert len(fake.writes()) == 1


def test_set_alias_refuses_when_the_alias_moved_and_writes_nothing(registry, fake):
    fake.aliases["champion"] = "3"  # another writer, after Rewind's preview
    with pytest.raises(ConflictError, match="alias 'champion' of 'fraud-detector' points at v3, expected v2"):
        registry.set_alias(MODEL, "champion", "1", expected="2")
    assert fake.writes() == []
    assert fake.aliases["champion"] == "3"


def test_a_writer_after_the_write_shows_in_the_read_back(registry, fake):
    def other_writer() -> None:
        fake.after_write = None
        fake.aliases["champion"] = "3"

    fake.after_write = other_writer
    with pytest.raises(ConflictError, match=r"moved under this write: read back at v3, not v1 \(another writer\)"):
        registry.set_alias(MODEL, "champion", "1", expected="2")
    assert len(fake.writes()) == 1  # Rewind does not fight the other writer


def test_checked_set_alias_writes_without_reading_first(registry, fake):
    registry.set_alias(MODEL, "champion", "1", expected="2", checked=True)
    alias_calls = [r.method for r in fake.requests if r.url.path.endswith("registered-models/alias")]
    assert alias_calls == ["POST", "GET"]


def test_delete_alias_sends_a_json_body_and_reads_back(registry, fake):
    assert registry.delete_alias(MODEL, "challenger", expected="3") is None
    assert fake.writes() == [("DELETE", "registered-models/alias", {"name": MODEL, "alias": "challenger"})]
    assert "challenger" not in fake.aliases
    assert registry.delete_alias(MODEL, "challenger", expected="3") is None  # already gone
    with pytest.raises(ConflictError, match="points at v2, expected v1"):
        registry.delete_alias(MODEL, "champion", expected="1")


def test_version_tags(registry, fake):
    assert registry.get_version_tag(MODEL, "2", "rewind.previous_champion") == "1"
    assert registry.get_version_tag(MODEL, "1", "absent") is None
    registry.set_version_tag(MODEL, "3", "rewind.left_by", "a1")
    assert fake.tags["3"] == {"rewind.left_by": "a1"}
    assert registry.tagged_versions("rewind.left_by", "a1") == [(MODEL, "3")]
    assert registry.swap_version_tag(MODEL, "3", "rewind.left_by", "a2", expected="a1") == "a2"
    assert registry.swap_version_tag(MODEL, "3", "rewind.left_by", None, expected="a2") is None
    assert fake.writes()[-1] == ("DELETE", "model-versions/delete-tag",
                                 {"name": MODEL, "version": "3", "key": "rewind.left_by"})
    with pytest.raises(ConflictError, match="tag 'rewind.previous_champion' of 'fraud-detector' v2 is 1, expected 7"):
        registry.swap_version_tag(MODEL, "2", "rewind.previous_champion", "3", expected="7")
    with pytest.raises(NotFoundError, match="version=9"):
        registry.get_version_tag(MODEL, "9", "k")


def _flaky(fake: FakeMlflow, failures: list[object]) -> Callable[[httpx.Request], httpx.Response]:
    """A handler that first fails as ``failures`` says (an HTTP status, or an exception to raise)."""
    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(int(str(failure)), text="busy")
        return fake.handler(request)
    return handler


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(mlflow_rest, "BACKOFF_S", 0.0)


@pytest.mark.parametrize("failure", [503, httpx.ConnectError("Connection refused")])
def test_max_retries_tries_again_then_gives_one_line(fake, failure):
    failures = [failure]
    retrying = MlflowRestRegistry(URL, max_retries=1, transport=httpx.MockTransport(_flaky(fake, failures)),
                                  environ={})
    assert retrying.get_alias(MODEL, "champion") == "2"
    assert failures == []
    once = MlflowRestRegistry(URL, max_retries=0, transport=httpx.MockTransport(_flaky(fake, [failure, failure])),
                              environ={})
    with pytest.raises(RegistryError, match=r"^MLflow registry at http://mlflow.test:5000: (read alias 'champion' "
                                            r"failed: HTTP 503|unreachable while trying to read alias 'champion')"):
        once.get_alias(MODEL, "champion")


def test_timeout_is_the_configured_one_and_named(fake):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("timed out", request=request)

    registry = MlflowRestRegistry(URL, timeout_s=2.5, max_retries=2, transport=httpx.MockTransport(handler),
                                  environ={})
    with pytest.raises(RegistryError, match=r"no answer within 2.5s while trying to read the model "
                                            r"\(registry.timeout_s\)"):
        registry.get_aliases(MODEL)
    assert len(seen) == 3 and seen[0]["read"] == 2.5


def test_not_an_mlflow_server(fake):
    registry = MlflowRestRegistry(URL + "/wrong", transport=httpx.MockTransport(fake.handler), environ={})
    with pytest.raises(RegistryError, match=r"HTTP 404 for /api/2.0/mlflow/registered-models/get is not an MLflow "
                                            r"answer \(is registry.tracking_uri an MLflow server\?\)"):
        registry.get_aliases(MODEL)


def test_credentials_come_from_mlflows_variables_and_never_show(fake):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(401, json={"error_code": "UNAUTHENTICATED", "message": "bad token"})

    registry = MlflowRestRegistry(URL, transport=httpx.MockTransport(handler),
                                  environ={"MLFLOW_TRACKING_TOKEN": "s3cret-token"})
    with pytest.raises(RegistryError, match="refused to read the model .HTTP 401: bad token.; credentials come from "
                                            "MLFLOW_TRACKING_TOKEN") as caught:
        registry.get_aliases(MODEL)
    assert "s3cret" not in str(caught.value)
    assert seen == ["Bearer s3cret-token"]
    basic = MlflowRestRegistry("http://user:pw@mlflow.test", transport=httpx.MockTransport(handler), environ={})
    assert basic.describe() == "MLflow registry at http://mlflow.test"


def test_wiring_picks_rest_for_a_server_and_the_client_otherwise(tmp_path):
    def config(uri: str) -> Config:
        return Config.model_construct(registry=RegistryConfig(tracking_uri=uri, timeout_s=3, max_retries=2))

    rest = build_registry(config("https://mlflow.example.com"))
    assert isinstance(rest, MlflowRestRegistry) and (rest.timeout_s, rest.max_retries) == (3, 2)
    assert type(build_registry(config(f"sqlite:///{tmp_path}/m.db"))).__name__ == "MlflowRegistry"
    assert is_rest_uri("HTTP://x") and not is_rest_uri("sqlite:///x.db") and not is_rest_uri("databricks")


def test_reading_a_server_never_imports_mlflow():
    code = (
        "import sys, httpx\n"
        "import console.cli, console.commands.status, console.wiring\n"
        "from console.adapters.mlflow_rest import MlflowRestRegistry\n"
        "h = lambda r: httpx.Response(200, json={'registered_model': {'aliases': []}})\n"
        "r = MlflowRestRegistry('http://x', transport=httpx.MockTransport(h), environ={})\n"
        "assert r.list_versions('m') == []\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
