"""Config: the file, environment overrides, and one-line errors naming the setting."""

import pytest
import yaml

from console.config import find_config_path, load_config, parse_config
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
