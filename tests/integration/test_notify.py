"""Webhooks and endpoints against a real HTTP receiver on loopback: what arrives, and one-line errors.

The receiver is the ``http_receiver`` fixture (tests/fixtures/servers.py). Every
failure must name the webhook or endpoint by its config name, on one line, and
never show its URL or a header value: those are secrets.
"""

from __future__ import annotations

import time

import pytest

from console.config import Config, JournalConfig, JournalSettings, parse_config
from console.domain.delivery import EndpointError, NotifyError
from console.domain.errors import ConfigError, ExternalSystemError
from console.sandbox.manager import free_port
from console.wiring import build_endpoints, build_notifier, known_secrets

SLACK_PATH = "/services/T0000SECRET/B0000SECRET/xoxb-hook-secret-123"
TOKEN = "Bearer pager-token-0123456789"

BASE = {
    "registry": {"tracking_uri": "sqlite:////tmp/x.db"},
    "router": {"socket": "/tmp/h.sock", "backends": {"m": "be_m"}},
    "metrics": {
        "url": "http://127.0.0.1:9090/",
        "catalogue": [{"name": "rate", "title": "req/s", "unit": "per_second", "query": 'x{model="$model"}'}],
    },
}


def config_with(**sections: object) -> Config:
    return parse_config({**BASE, **sections}, "test", environ={})


def notifier_for(url: str, timeout_s: float = 2.0):
    """A notifier with one webhook, ``oncall``, whose URL comes from ``ONCALL_WEBHOOK``."""
    config = config_with(notify={"webhooks": {"oncall": {"url_env": "ONCALL_WEBHOOK", "timeout_s": timeout_s}}})
    return build_notifier(config, environ={"ONCALL_WEBHOOK": url})


def endpoints_for(url: str, timeout_s: float = 2.0, method: str = "POST"):
    """Endpoints with one entry, ``pager``, its URL and Authorization header from the environment."""
    config = config_with(endpoints={"pager": {"url_env": "PAGER_URL", "method": method, "timeout_s": timeout_s,
                                              "headers_env": {"Authorization": "PAGER_TOKEN"}}})
    return build_endpoints(config, environ={"PAGER_URL": url, "PAGER_TOKEN": TOKEN})


def assert_clean(error: BaseException, *secrets: str) -> str:
    """The error's message: one line, with none of ``secrets`` (nor the default secret parts) in it."""
    message = str(error)
    assert "\n" not in message
    for secret in (*secrets, SLACK_PATH, "T0000SECRET", "xoxb-hook-secret", TOKEN, "pager-token"):
        assert secret not in message, message
    return message


def test_a_notification_arrives_as_slack_json_with_its_dedupe_key(http_receiver):
    notifier = notifier_for(http_receiver.url + SLACK_PATH)
    delivery = notifier.post("oncall", "*Rollback* of fraud-detector: p95 > 250 ms & <!channel>", "inc-1:notify:1")

    assert delivery.ok and delivery.status == 200
    assert delivery.summary.startswith("webhook oncall: posted, HTTP 200")
    assert http_receiver.url not in delivery.summary and SLACK_PATH not in delivery.summary
    [(method, path, headers, body)] = http_receiver.requests
    assert (method, path) == ("POST", SLACK_PATH)
    assert body == {"text": "*Rollback* of fraud-detector: p95 &gt; 250 ms &amp; &lt;!channel&gt;"}
    assert headers["Idempotency-Key"] == "inc-1:notify:1"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("rewind/")
    assert notifier.webhooks() == ("oncall",)
    assert "oncall" in notifier.describe() and http_receiver.url not in notifier.describe()


def test_a_webhook_url_can_come_from_a_file(http_receiver, tmp_path):
    secret_file = tmp_path / "oncall.url"
    secret_file.write_text(http_receiver.url + SLACK_PATH + "\n")
    config = config_with(notify={"webhooks": {"oncall": {"url_file": str(secret_file)}}})

    build_notifier(config, environ={}).post("oncall", "hello", "k1")

    assert http_receiver.requests[0].path == SLACK_PATH
    assert http_receiver.requests[0].json_body == {"text": "hello"}


def test_an_endpoint_gets_the_json_body_its_method_and_the_header_from_env(http_receiver):
    http_receiver.reply(201, "created")
    endpoints = endpoints_for(http_receiver.url + "/v1/incidents", method="put")

    delivery = endpoints.call("pager", {"model": "fraud-detector", "severity": 2, "tags": ["rollback"]},
                              dedupe_key="inc-1:page:1")
    endpoints.call("pager", {"second": True})

    assert delivery.ok and delivery.status == 201
    assert delivery.summary.startswith("endpoint pager: PUT accepted, HTTP 201")
    assert TOKEN not in delivery.summary
    first, second = http_receiver.requests
    assert (first.method, first.path) == ("PUT", "/v1/incidents")
    assert first.json_body == {"model": "fraud-detector", "severity": 2, "tags": ["rollback"]}
    assert first.headers["authorization"] == TOKEN
    assert first.headers["idempotency-key"] == "inc-1:page:1"
    assert "idempotency-key" not in second.headers
    assert endpoints.names() == ("pager",)


def test_an_unreachable_webhook_is_one_line_naming_it():
    url = f"http://127.0.0.1:{free_port()}{SLACK_PATH}"
    with pytest.raises(NotifyError) as caught:
        notifier_for(url).post("oncall", "hello", "k1")
    message = assert_clean(caught.value, url, url.split("/services")[0])
    assert message.startswith("webhook oncall: unreachable")
    assert caught.value.name == "oncall" and caught.value.status is None
    assert not caught.value.outcome_unknown
    assert isinstance(caught.value, ExternalSystemError)


def test_a_500_answer_is_one_line_naming_the_webhook_and_never_echoes_the_secret(http_receiver):
    http_receiver.reply(500, f"no such hook {SLACK_PATH}\nTraceback: ...")
    with pytest.raises(NotifyError) as caught:
        notifier_for(http_receiver.url + SLACK_PATH).post("oncall", "hello", "k1")
    message = assert_clean(caught.value, http_receiver.url)
    assert message == "webhook oncall: refused with HTTP 500 Internal Server Error: no such hook [redacted]"
    assert caught.value.status == 500
    assert len(http_receiver.requests) == 1


def test_an_endpoint_refusal_never_echoes_the_auth_header(http_receiver):
    http_receiver.reply(403, f"token {TOKEN.split()[1]} is revoked")
    with pytest.raises(EndpointError) as caught:
        endpoints_for(http_receiver.url + "/hook").call("pager", {"a": 1})
    message = assert_clean(caught.value, http_receiver.url)
    assert message.startswith("endpoint pager: refused with HTTP 403 Forbidden: token [redacted] is revoked")


def test_a_silent_receiver_times_out_with_one_line_naming_the_webhook(http_receiver):
    http_receiver.reply(200, "ok", delay_s=5)
    notifier = notifier_for(http_receiver.url + SLACK_PATH, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(NotifyError) as caught:
        notifier.post("oncall", "hello", "k1")
    assert time.monotonic() - started < 2
    message = assert_clean(caught.value, http_receiver.url)
    assert message.startswith("webhook oncall: no answer within 0.3 s")
    assert caught.value.outcome_unknown  # it reached the receiver: retry only with the same key
    assert len(http_receiver.requests) == 1


def test_a_redirect_is_not_followed(http_receiver):
    http_receiver.reply(302, "moved")
    with pytest.raises(NotifyError, match=r"^webhook oncall: answered HTTP 302 Found: a redirect, not followed$"):
        notifier_for(http_receiver.url + SLACK_PATH).post("oncall", "hello", "k1")


def test_an_unknown_name_is_an_external_system_error_naming_it(http_receiver):
    with pytest.raises(NotifyError, match=r"^webhook 'pager' is not configured \(notify.webhooks has oncall\)$"):
        notifier_for(http_receiver.url).post("pager", "hello", "k1")
    with pytest.raises(EndpointError, match=r"^endpoint 'oncall' is not configured \(endpoints has pager\)$"):
        endpoints_for(http_receiver.url).call("oncall", {})
    assert http_receiver.requests == []


def test_a_missing_secret_is_a_config_error_naming_the_setting(http_receiver, tmp_path):
    config = config_with(
        notify={"webhooks": {"oncall": {"url_env": "ONCALL_WEBHOOK"},
                             "incidents": {"url_file": str(tmp_path / "missing.url")}}},
        endpoints={"pager": {"url": http_receiver.url, "headers_env": {"Authorization": "PAGER_TOKEN"}}},
    )
    notifier = build_notifier(config, environ={})
    with pytest.raises(ConfigError, match=r"^notify\.webhooks\.oncall\.url_env names ONCALL_WEBHOOK, which is not"):
        notifier.post("oncall", "hello", "k1")
    with pytest.raises(ConfigError, match=r"^notify\.webhooks\.incidents\.url_file .*missing\.url: cannot be read"):
        notifier.post("incidents", "hello", "k1")
    with pytest.raises(ConfigError, match=r"^endpoints\.pager\.headers_env\.Authorization names PAGER_TOKEN, which is"):
        build_endpoints(config, environ={}).call("pager", {})
    with pytest.raises(ConfigError, match=r"^notify\.webhooks\.oncall\.url_env ONCALL_WEBHOOK: does not hold an abs"):
        build_notifier(config, environ={"ONCALL_WEBHOOK": "hooks.slack.com/services/x"}).post("oncall", "hi", "k1")
    assert http_receiver.requests == []


def test_a_body_that_is_not_json_names_the_endpoint(http_receiver):
    with pytest.raises(EndpointError, match=r"^endpoint pager: the body cannot be sent as JSON"):
        endpoints_for(http_receiver.url).call("pager", {"when": object()})
    assert http_receiver.requests == []


def test_the_journal_redacts_webhook_urls_and_endpoint_headers(tmp_path):
    url_file = tmp_path / "incidents.url"
    url_file.write_text("https://hooks.example.com" + SLACK_PATH)
    config = config_with(
        notify={"webhooks": {"oncall": {"url_env": "ONCALL_WEBHOOK"}, "incidents": {"url_file": str(url_file)},
                             "local": {"url": "http://127.0.0.1:1/hook"}}},
        endpoints={"pager": {"url_env": "UNSET_URL", "headers_env": {"Authorization": "PAGER_TOKEN"}}},
    )
    journal = JournalConfig(url=f"sqlite:///{tmp_path / 'j.db'}")
    settings = JournalSettings(journal, None, None, config.outbound_secrets())
    secrets = known_secrets(settings, {"ONCALL_WEBHOOK": "https://hooks.example.com/services/oncall-secret",
                                       "PAGER_TOKEN": TOKEN})
    assert "https://hooks.example.com/services/oncall-secret" in secrets
    assert "https://hooks.example.com" + SLACK_PATH in secrets
    assert TOKEN in secrets
