"""Config: the file, environment overrides, and one-line errors naming the setting."""

from pathlib import Path

import pytest
import yaml

from console.config import find_config_path, load_config, load_journal_settings, parse_config
from console.domain.errors import ConfigError
from console.sandbox.templates import rewind_config

GOOD = {
    "registry": {"tracking_uri": "sqlite:////tmp/x.db"},
    "router": {"socket": "/tmp/h.sock", "backends": {"m": "be_m"}},
    "metrics": {
        "url": "http://127.0.0.1:9090/",
        "window": "1m",
        "traffic_metric": "rate",
        "catalogue": [
            {"name": "rate", "title": "req/s", "unit": "per_second", "query": 'x{model="$model"}'},
        ],
    },
}


def write(tmp_path, data) -> str:
    path = tmp_path / "rewind.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def test_a_good_config_loads(tmp_path):
    loaded = load_config(write(tmp_path, GOOD), environ={})
    assert loaded.config.metrics.url == "http://127.0.0.1:9090"
    assert loaded.config.metrics.specs()[0].name == "rate"


def test_the_sandbox_config_is_valid(tmp_path):
    path = tmp_path / "rewind.yaml"
    path.write_text(rewind_config(tmp_path, "fraud-detector", 9090))
    config = load_config(str(path), environ={}).config
    assert config.default_model == "fraud-detector"
    assert len(config.metrics.catalogue) == 6


def test_environment_overrides_nested_settings(tmp_path):
    environ = {"REWIND_METRICS__URL": "http://other:9090", "REWIND_METRICS__TIMEOUT_S": "2.5",
               "REWIND_DEFAULT_MODEL": "m", "REWIND_CONFIG": "ignored", "REWIND_UNRELATED": "x"}
    config = load_config(write(tmp_path, GOOD), environ=environ).config
    assert config.metrics.url == "http://other:9090"
    assert config.metrics.timeout_s == 2.5
    assert config.default_model == "m"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("metrics"), "metrics: Field required"),
        (lambda d: d["metrics"].update(url="prometheus:9090"), "metrics.url: must start with http"),
        (lambda d: d["metrics"].update(window="5 minutes"), "metrics.window: '5 minutes' is not a PromQL"),
        (lambda d: d["metrics"].update(traffic_metric="nope"), "traffic_metric 'nope' is not in the catalogue"),
        (lambda d: d["router"].update(server_template="srv"), "router.server_template"),
        (lambda d: d["router"].update(sockett="x"), "router.sockett: unknown setting"),
        (lambda d: d["metrics"]["catalogue"][0].update(query="up"), "must select the model with $model"),
        (lambda d: d["metrics"]["catalogue"][0].update(unit="furlongs"), "catalogue.0.unit"),
        (lambda d: d["metrics"].update(segment_label="version"), "version_label and segment_label are both"),
    ],
)
def test_bad_settings_are_named(tmp_path, mutate, message):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert path in str(error.value)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "registry:\n  tracking_uri: [unclosed\n")
    with pytest.raises(ConfigError, match=r"rewind.yaml: line \d+: not valid YAML"):
        load_config(path, environ={})


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_config(str(tmp_path / "nope.yaml"), environ={})


def test_a_config_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config(["a"], "x.yaml", environ={})


def test_config_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("REWIND_SANDBOX_DIR", str(tmp_path / "sandbox"))
    monkeypatch.delenv("REWIND_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="no config found"):
        find_config_path()
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "rewind.yaml").write_text("x: 1")
    assert find_config_path() == tmp_path / "sandbox" / "rewind.yaml"
    (tmp_path / "cfg" / "rewind").mkdir(parents=True)
    (tmp_path / "cfg" / "rewind" / "config.yaml").write_text("x: 1")
    assert find_config_path() == tmp_path / "cfg" / "rewind" / "config.yaml"
    monkeypatch.setenv("REWIND_CONFIG", "/from/env.yaml")
    assert str(find_config_path()) == "/from/env.yaml"
    assert str(find_config_path("/explicit.yaml")) == "/explicit.yaml"


# notify, endpoints and playbooks (issue 10)

def with_sections(**sections) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data.update(sections)
    return data


def test_outbound_sections_default_to_nothing_configured_and_confirmation_required(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    config = load_config(write(tmp_path, GOOD), environ={}).config
    assert config.notify.webhooks == {}
    assert config.endpoints == {}
    assert config.outbound_secrets() == ()
    assert config.playbooks.require_confirmation is True
    repository = Path(__file__).resolve().parents[2]
    assert config.playbooks.dirs == [repository / "playbooks", tmp_path / "cfg" / "rewind" / "playbooks"]


def test_webhooks_and_endpoints_load_with_their_secret_sources(tmp_path):
    data = with_sections(
        notify={"webhooks": {"oncall": {"url_env": "ONCALL_WEBHOOK"},
                             "incidents": {"url_file": "~/.config/rewind/incidents.url", "timeout_s": 2},
                             "local": {"url": "http://127.0.0.1:8080/hook"}}},
        endpoints={"pager": {"url_env": "PAGER_URL", "method": "put",
                             "headers_env": {"Authorization": "PAGER_TOKEN", "X-Team": "TEAM"}}},
        playbooks={"dirs": ["/srv/playbooks", "local"], "require_confirmation": False},
    )
    path = write(tmp_path, data)
    config = load_config(path, environ={}).config
    assert config.notify.webhooks["oncall"].timeout_s == 5
    assert config.notify.webhooks["incidents"].timeout_s == 2
    pager = config.endpoints["pager"]
    assert (pager.method, pager.timeout_s) == ("PUT", 5)
    assert sorted((s.setting, s.env or "", s.file or "") for s in config.outbound_secrets()) == [
        ("endpoints.pager.headers_env.Authorization", "PAGER_TOKEN", ""),
        ("endpoints.pager.headers_env.X-Team", "TEAM", ""),
        ("endpoints.pager.url", "PAGER_URL", ""),
        ("notify.webhooks.incidents.url", "", "~/.config/rewind/incidents.url"),
        ("notify.webhooks.oncall.url", "ONCALL_WEBHOOK", ""),
    ]
    assert "127.0.0.1:8080" not in repr(config.notify)  # a URL never shows in a repr, literal or not
    assert config.playbooks.require_confirmation is False
    assert config.playbooks.resolved_dirs(Path(path)) == (Path("/srv/playbooks"), tmp_path / "local")


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"notify": {"webhooks": {"oncall": {"timeout_s": 2}}}},
         "notify.webhooks.oncall: give exactly one of url, url_env or url_file (found none)"),
        ({"notify": {"webhooks": {"oncall": {"url": "http://x/h", "url_env": "HOOK"}}}},
         "notify.webhooks.oncall: give exactly one of url, url_env or url_file (found url and url_env)"),
        ({"notify": {"webhooks": {"oncall": {"url": "hooks.slack.com/services/x"}}}},
         "notify.webhooks.oncall.url: must be an absolute http:// or https:// URL"),
        ({"notify": {"webhooks": {"oncall": {"url_env": "not a name"}}}},
         "notify.webhooks.oncall.url_env: 'not a name' is not an environment variable name"),
        ({"notify": {"webhooks": {"oncall": {"url_env": "H", "channel": "#x"}}}},
         "notify.webhooks.oncall.channel: unknown setting"),
        ({"notify": {"webhooks": {"copy": {"url_env": "H"}}}}, "'copy' is not a webhook name"),
        ({"notify": {"webhooks": {"OnCall": {"url_env": "H"}}}}, "webhook name 'OnCall' must be lower case"),
        ({"notify": {"slack": {}}}, "notify.slack: unknown setting"),
        ({"endpoints": {"pager": {"url_env": "U", "method": "GET"}}}, "endpoints.pager.method"),
        ({"endpoints": {"pager": {"url_env": "U", "timeout_s": 0}}}, "endpoints.pager.timeout_s"),
        ({"endpoints": {"pager": {"url_env": "U", "headers_env": {"Host": "H"}}}}, "Host is set by Rewind itself"),
        ({"endpoints": {"pager": {"url_env": "U", "headers_env": {"Authorization": "Bearer abc"}}}},
         "Authorization: 'Bearer abc' is not an environment variable name (values come from env only)"),
        ({"endpoints": {"pager": {"url_env": "U", "headers": {"Authorization": "x"}}}},
         "endpoints.pager.headers: unknown setting"),
        ({"endpoints": {"Pager Duty": {"url_env": "U"}}}, "endpoint name 'Pager Duty' must be lower case"),
        ({"playbooks": {"dirz": ["x"]}}, "playbooks.dirz: unknown setting"),
        ({"playbooks": {"require_confirmation": "maybe"}}, "playbooks.require_confirmation"),
    ],
)
def test_bad_outbound_settings_are_named(tmp_path, sections, message):
    path = write(tmp_path, with_sections(**sections))
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_environment_overrides_reach_webhooks_endpoints_and_playbooks(tmp_path):
    data = with_sections(notify={"webhooks": {"oncall": {"url_env": "ONCALL_WEBHOOK"}}},
                         endpoints={"pager": {"url_env": "PAGER_URL", "headers_env": {"Authorization": "OLD"}}})
    environ = {
        "REWIND_NOTIFY__WEBHOOKS__ONCALL__URL_ENV": "",  # unset the file's source, give a literal one
        "REWIND_NOTIFY__WEBHOOKS__ONCALL__URL": "http://127.0.0.1:9/hook",
        "REWIND_NOTIFY__WEBHOOKS__DRILL__URL_FILE": "/run/secrets/drill.url",
        "REWIND_ENDPOINTS__PAGER__HEADERS_ENV__AUTHORIZATION": "NEW",
        "REWIND_ENDPOINTS__PAGER__TIMEOUT_S": "1.5",
        "REWIND_PLAYBOOKS__DIRS": "/srv/playbooks:/etc/rewind/playbooks",
        "REWIND_PLAYBOOKS__REQUIRE_CONFIRMATION": "false",
    }
    config = load_config(write(tmp_path, data), environ=environ).config
    assert config.notify.webhooks["oncall"].url == "http://127.0.0.1:9/hook"
    assert config.notify.webhooks["oncall"].url_env is None
    assert config.notify.webhooks["drill"].url_file == "/run/secrets/drill.url"
    assert config.endpoints["pager"].headers_env == {"authorization": "NEW"}  # one header, the override's
    assert config.endpoints["pager"].timeout_s == 1.5
    assert config.playbooks.dirs == [Path("/srv/playbooks"), Path("/etc/rewind/playbooks")]
    assert config.playbooks.require_confirmation is False


def test_the_journal_settings_know_the_outbound_secret_sources(tmp_path):
    data = with_sections(notify={"webhooks": {"oncall": {"url_env": "ONCALL_WEBHOOK"}}},
                         endpoints={"pager": {"url": "http://127.0.0.1:9/x", "headers_env": {"X-Token": "TOK"}},
                                    "broken": {"method": "DELETE"}})
    settings = load_journal_settings(write(tmp_path, data), environ={})
    assert sorted(s.setting for s in settings.outbound) == ["endpoints.pager.headers_env.X-Token",
                                                             "notify.webhooks.oncall.url"]
