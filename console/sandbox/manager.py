"""Bring the sandbox up and down, report on it, and switch its scenario.

Everything lives under one state directory: ``state.json`` (ports, pids,
paths), the generated configs, the MLflow database and artifacts, the Feast
repo (``features/``), Prometheus's storage and alert rules (``rules.yml``),
Alertmanager's storage, and one log per process. ``up`` is idempotent;
``down`` stops exactly the processes ``state.json`` records (pid and start
time must both match).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import console
from console.domain.errors import RewindError, SandboxError
from console.sandbox import features, processes, templates
from console.sandbox.processes import ProcessRecord
from console.sandbox.scenarios import FEATURE_BUG, SCENARIOS, TARGETS, make_scenario, write_scenario

DEFAULT_MODEL = "fraud-detector"
DEFAULT_RATE = 80.0
STATE_SCHEMA = "rewind.sandbox/1"
BINARIES = {"haproxy": "haproxy", "prometheus": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager"}
"""Each server binary the sandbox runs, and the Debian package that installs it."""


def fleet_models(count: int, first: str = DEFAULT_MODEL) -> list[str]:
    """The sandbox's models for ``--models N``: ``first``, then ``first-2`` ... ``first-N``."""
    if count < 1:
        raise SandboxError(f"--models {count}: the sandbox runs at least one model")
    return [first, *(f"{first}-{index}" for index in range(2, count + 1))]


def fleet_rate(count: int) -> float:
    """The default request rate for ``count`` models, split across them at random: one model keeps today's
    rate; each further one adds half of it, so a challenger's cells still carry enough traffic to judge."""
    return DEFAULT_RATE * (1 + (count - 1) / 2)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with distinct_ports() as take:
        return take()


@contextmanager
def distinct_ports() -> Iterator[Callable[[], int]]:
    """Hand out TCP ports on 127.0.0.1 that nothing listens on, each different from the others handed out here.

    Each port is held until the block ends: a port asked for and released at once can be
    handed out again by the next ask (the sandbox once gave Prometheus and a model server
    the same port).
    """
    with ExitStack() as held:
        def take() -> int:
            s = held.enter_context(closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)))
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port

        yield take


def find_binary(name: str) -> str:
    """The path of a server binary, or a clear error saying how to install it."""
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if not found:
        raise SandboxError(
            f"{name} is not installed: install the Debian package with `sudo apt-get install {BINARIES[name]}` "
            "(or run `make demo`, which does it when run as root)"
        )
    return found


def _http_ok(url: str, timeout: float = 1.0, expect: str | None = None) -> bool:
    """Whether ``url`` answers 2xx (and, with ``expect``, its body contains that text)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            body = response.read().decode("utf-8", "replace")
            return 200 <= response.status < 300 and (expect is None or expect in body)
    except (OSError, urllib.error.URLError):
        return False


def _log_tail(path: str, lines: int = 3) -> str:
    try:
        tail = Path(path).read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return " | ".join(line.strip() for line in tail)


class Sandbox:
    """The sandbox whose state lives in ``state_dir``."""

    def __init__(self, state_dir: Path, model: str = DEFAULT_MODEL) -> None:
        self.dir = state_dir.expanduser().resolve()
        self.model = model
        self.state_path = self.dir / "state.json"
        self.config_path = self.dir / "rewind.yaml"

    # -- state ------------------------------------------------------------------------------
    def load_state(self) -> dict | None:
        """The recorded state, or ``None`` when the sandbox was never started here."""
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SandboxError(f"sandbox state {self.state_path} is unreadable ({exc}); "
                               "stop stray processes by hand and delete it") from None

    def _save_state(self, state: dict) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def records(self, state: dict | None = None) -> list[ProcessRecord]:
        """The processes the state records."""
        state = self.load_state() if state is None else state
        return [ProcessRecord(**p) for p in (state or {}).get("processes", [])]

    def running(self) -> bool:
        """Whether every recorded process is alive."""
        records = self.records()
        return bool(records) and all(r.alive() for r in records)

    @contextmanager
    def _lock(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SandboxError(f"another rewind sandbox command is working on {self.dir}") from None
            yield

    # -- up ---------------------------------------------------------------------------------
    def up(self, rate: float | None = None, say: Callable[[str], None] = print, models: int | None = None) -> dict:
        """Start everything, unless it already runs. Returns the state.

        ``models`` (``--models N``, else as the sandbox last ran, else 1) is how many models the
        sandbox serves: the first exactly as a one-model sandbox, each further one with two versions
        (champion 90 %, challenger 10 %) in the same registry, its own HAProxy backend, all of them
        served from one extra process and scraped by the same Prometheus. Scenarios hit the first.

        On any failure, every process started so far is stopped again and the
        error names the component and its log.
        """
        binaries = {name: find_binary(name) for name in BINARIES}
        features.require_feast()
        with self._lock():
            state = self.load_state()
            if state and self.records(state):
                if all(r.alive() for r in self.records(state)):
                    running = len(state.get("models") or [self.model])
                    if models is not None and models != running:
                        raise SandboxError(f"the sandbox in {self.dir} already runs {running} model(s): stop it "
                                           f"(`rewind sandbox down`) to start it again with --models {models}")
                    say(f"sandbox already running in {self.dir}")
                    return state
                say("sandbox was partly running; stopping what is left and starting again")
                self._stop_all(state)
            names = fleet_models(models or len((state or {}).get("models") or [self.model]), self.model)
            previous_rate = (state or {}).get("rate") if len((state or {}).get("models") or [self.model]) == len(
                names) else None
            rate = rate or previous_rate or fleet_rate(len(names))
            state = {
                "schema": STATE_SCHEMA, "model": self.model, "dir": str(self.dir), "rate": rate,
                "config": str(self.config_path), "started_at": time.time(), "processes": [],
            }
            if len(names) > 1:
                state["models"] = names
            try:
                self._start(state, binaries, say)
            except BaseException:
                self._stop_all(state)
                raise
            return state

    @staticmethod
    def _env() -> dict[str, str]:
        """The environment of the sandbox's Python processes."""
        env = dict(os.environ)
        package_root = str(Path(console.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # The sandbox's processes log to files, where MLflow's own records help (the CLI quiets them
        # on the terminal by setting MLFLOW_LOGGING_LEVEL, which its children would otherwise inherit).
        env.update(PYTHONUNBUFFERED="1", MLFLOW_DISABLE_TELEMETRY="true", PYTHONWARNINGS="ignore",
                   MLFLOW_LOGGING_LEVEL="INFO")
        return env

    def _server_argv(self, state: dict, version: str, port: int) -> list[str]:
        return [sys.executable, "-m", "console.sandbox.model_server", "--state-dir", str(self.dir),
                "--tracking-uri", state["tracking_uri"], "--model", self.model, "--version", version,
                "--port", str(port)]

    def _features_argv(self, release: str, if_active: str | None = None) -> list[str]:
        return [sys.executable, "-m", "console.sandbox.features", "--state-dir", str(self.dir), "release", release,
                *(["--if-active", if_active] if if_active else [])]

    def _finish_features(self, proc: subprocess.Popen, release: str, log_path: Path) -> dict:
        """Wait for a feature-release subprocess; its JSON outcome, or an error naming its log."""
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SandboxError(f"applying feature release {release} took over 120 s (log {log_path})") from None
        if proc.returncode != 0:
            if proc.returncode == 2:
                raise features.FeastMissingError(f"{_log_tail(str(log_path), 1)} (log {log_path})")
            raise SandboxError(f"applying feature release {release} failed: {_log_tail(str(log_path))} "
                               f"(log {log_path})")
        return json.loads(out.decode().strip().splitlines()[-1])

    def _start_features(self, release: str, if_active: str | None = None) -> tuple[subprocess.Popen, Path]:
        """Start applying a release of the feature repo with the Feast SDK (in a subprocess: Feast imports ~3 s)."""
        log_path = self.dir / "logs" / "features.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(self._features_argv(release, if_active), stdout=subprocess.PIPE, stderr=log,
                                    env=self._env(), cwd=self.dir)
        return proc, log_path

    def apply_features(self, release: str, if_active: str | None = None, state: dict | None = None) -> dict:
        """Apply a release of the feature repo (``good`` or ``cents``); its outcome, recorded in the state."""
        proc, log_path = self._start_features(release, if_active)
        outcome = self._finish_features(proc, release, log_path)
        state = self.load_state() if state is None else state
        if state is not None and outcome.get("applied"):
            state["features"] = outcome
            self._save_state(state)
        return outcome

    def _launch(self, state: dict, name: str, argv: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        record = processes.start(name, argv, self.dir / "logs" / f"{name}.log", self.dir, env)
        state["processes"].append(record.to_dict())
        self._save_state(state)
        return record

    def _wait(self, what: str, ready: Callable[[], bool], records: list[ProcessRecord], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for record in records:
                if not record.alive():
                    raise SandboxError(f"{record.name} exited during start-up: {_log_tail(record.log)} "
                                       f"(log {record.log})")
            time.sleep(0.1)
        logs = ", ".join(r.log for r in records)
        raise SandboxError(f"{what} did not become ready within {timeout:.0f}s (see {logs})")

    def _start(self, state: dict, binaries: dict[str, str], say: Callable[[str], None]) -> None:
        haproxy_bin, prometheus_bin = binaries["haproxy"], binaries["prometheus"]
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        tracking_uri = f"sqlite:///{self.dir / 'mlflow.db'}"
        env = self._env()
        # The feature store's release (the buggy one only when the sandbox stopped in feature-bug) is applied
        # while the registry is seeded: both are a few seconds of imports.
        features.write_repo(self.dir)
        release = "cents" if (self.scenario() or {}).get("name") == FEATURE_BUG else "good"
        say(f"sandbox: seeding the MLflow registry and the feature store in {self.dir}")
        applying, features_log = self._start_features(release)
        seed_log = self.dir / "logs" / "seed.log"
        try:
            with open(seed_log, "wb") as log:
                seeded = subprocess.run(
                    [sys.executable, "-m", "console.sandbox.model", "--tracking-uri", tracking_uri,
                     "--artifacts", str(self.dir / "mlartifacts"), "--model", self.model,
                     *(arg for extra in state.get("models", [])[1:] for arg in ("--extra-model", extra))],
                    stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.dir, timeout=300, check=False,
                )
        finally:
            state["features"] = self._finish_features(applying, release, features_log)
        if seeded.returncode != 0:
            raise SandboxError(f"seeding the MLflow registry failed: {_log_tail(str(seed_log))} (log {seed_log})")
        seed = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
        versions, aliases, fallback = seed["versions"], seed["aliases"], seed["fallback"]
        weights = {v: 0 for v in versions}
        if aliases.get("champion"):
            weights[aliases["champion"]] = 90
        if aliases.get("challenger"):
            weights[aliases["challenger"]] = 10
        with distinct_ports() as port:
            ports = {
                "frontend": port(), "exporter": port(), "prometheus": port(), "admin": port(),
                "models": {v: port() for v in versions}, "fallback": port(),
                # Alertmanager, and where it sends alerts: `rewind alerts serve` listens there (nothing else does).
                "alertmanager": port(), "alerts": port(),
            }
            fleet = {name: templates.FleetBackend(
                {v: port() for v in spec["versions"]},
                {v: {spec["aliases"].get("champion"): 90, spec["aliases"].get("challenger"): 10}.get(v, 0)
                 for v in spec["versions"]}, spec["aliases"].get("champion"))
                for name, spec in seed.get("fleet", {}).items()}
        if fleet:
            ports["fleet"] = {name: backend.servers for name, backend in fleet.items()}
        state.update(versions=versions, fallback_version=fallback, ports=ports, tracking_uri=tracking_uri)
        if (self.scenario() or {}).get("name", "champion-down") == "champion-down":
            write_scenario(self.dir, make_scenario("healthy", None))  # a fresh start has every server up

        say(f"sandbox: starting {len(versions)} model servers")
        servers = [
            self._launch(state, f"model-v{v}", self._server_argv(state, v, port), env)
            for v, port in ports["models"].items()
        ]
        # The fallback's simple model does not fail at random: it is what answers when the others do.
        servers.append(self._launch(state, "fallback", [*self._server_argv(state, fallback, ports["fallback"]),
                                                        "--base-error-rate", "0"], env))
        if fleet:
            # The further models' versions share one process: one MLflow and one Feast import for all of them.
            say(f"sandbox: starting {len(fleet)} further models ({', '.join(fleet)}) in one model-server process")
            servers.append(self._launch(state, "fleet-models", [
                sys.executable, "-m", "console.sandbox.model_server", "--state-dir", str(self.dir),
                "--tracking-uri", tracking_uri,
                *(arg for name, backend in fleet.items() for version, port in backend.servers.items()
                  for arg in ("--serve", f"{name}={version}@{port}"))], env))
        # The mirror's runtime map starts empty: no version is in shadow until `rewind shadow start`.
        templates.shadow_map_path(self.dir).write_text("")
        (self.dir / "haproxy.cfg").write_text(templates.haproxy_config(
            self.dir, self.model, ports["frontend"], ports["exporter"], ports["admin"], ports["models"], weights,
            ports["fallback"], protected=aliases.get("champion"), fleet=fleet or None))
        check = subprocess.run([haproxy_bin, "-c", "-q", "-f", str(self.dir / "haproxy.cfg")],
                               capture_output=True, text=True, timeout=30, check=False)
        if check.returncode != 0:
            reason = (check.stderr or check.stdout).strip().splitlines()[-1:] or ["no reason given"]
            raise SandboxError(f"HAProxy rejected {self.dir / 'haproxy.cfg'}: {reason[0]}")
        say("sandbox: starting HAProxy")
        sock = self.dir / "haproxy.sock"
        sock.unlink(missing_ok=True)
        haproxy = self._launch(state, "haproxy", [haproxy_bin, "-db", "-f", str(self.dir / "haproxy.cfg")])
        self._wait("HAProxy's admin socket", sock.exists, [haproxy], 10)

        say("sandbox: starting Alertmanager")
        (self.dir / "alertmanager.yml").write_text(templates.alertmanager_config(ports["alerts"]))
        alertmanager_url = f"http://127.0.0.1:{ports['alertmanager']}"
        alertmanager = self._launch(state, "alertmanager", [
            binaries["prometheus-alertmanager"], f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", f"--web.external-url={alertmanager_url}",
            "--cluster.listen-address=",  # no clustering: it would listen on 0.0.0.0:9094
        ])
        scraped = {**ports["models"], "fallback": ports["fallback"],
                   **{f"{name}/v{v}": p for name, backend in fleet.items() for v, p in backend.servers.items()}}
        (self.dir / "rules.yml").write_text(templates.sandbox_rules([self.model, *fleet], ports["prometheus"]))
        (self.dir / "prometheus.yml").write_text(templates.prometheus_config(
            scraped, ports["exporter"], self.dir / "rules.yml", ports["alertmanager"]))
        say("sandbox: starting Prometheus")
        prometheus = self._launch(state, "prometheus", [
            prometheus_bin, f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            f"--web.external-url=http://127.0.0.1:{ports['prometheus']}",
            "--web.enable-lifecycle",  # POST /-/reload reads rules.yml again (a readiness drill removes it)
            "--storage.tsdb.retention.time=2d", "--log.level=warn",
        ])
        self.config_path.write_text(templates.rewind_config(self.dir, self.model, ports["prometheus"],
                                                            ports["alertmanager"], ports["alerts"], list(fleet)))
        self._wait("the model servers", lambda: all(
            _http_ok(f"http://127.0.0.1:{p}/health") for p in scraped.values()), servers, 60)
        from console.adapters.haproxy import HAProxyRouter

        routed = [self.model, *fleet]
        router = HAProxyRouter(str(sock), {name: templates.backend_name(name) for name in routed})
        self._wait("HAProxy's health checks of the model servers", lambda: all(
            s.operational for name in routed for s in router.read_state(name).servers), [haproxy], 20)
        say(f"sandbox: model servers ready; sending {state['rate']:g} requests/s through HAProxy")
        self._launch(state, "traffic", [
            sys.executable, "-m", "console.sandbox.traffic", "--state-dir", str(self.dir),
            "--url", f"http://127.0.0.1:{ports['frontend']}", "--rate", str(state["rate"]),
            *(["--models", ",".join(routed)] if fleet else []),
        ], env)
        self._wait("Prometheus", lambda: _http_ok(f"http://127.0.0.1:{ports['prometheus']}/-/ready"),
                   [prometheus], 30)
        self._wait("Alertmanager", lambda: _http_ok(f"{alertmanager_url}/-/ready"), [alertmanager], 30)
        # Ready means the console has numbers to show: a request rate needs two scrapes of traffic.
        first_traffic = (f'sum(rate(rewind_requests_total{{model="{self.model}"}}[1m])) > 0' if not fleet
                         else f'count(sum by (model) (rate(rewind_requests_total[1m])) > 0) == {len(routed)}')
        query = urllib.parse.urlencode({"query": first_traffic})
        self._wait("the first traffic samples in Prometheus", lambda: _http_ok(
            f"http://127.0.0.1:{ports['prometheus']}/api/v1/query?{query}", expect='"value"'), [prometheus], 30)
        self._save_state(state)
        say(f"sandbox: up. Config: {self.config_path}")

    # -- down -------------------------------------------------------------------------------
    def _stop_all(self, state: dict) -> list[str]:
        stopped = []
        for record in reversed(self.records(state)):
            if processes.stop(record):
                stopped.append(record.name)
            else:
                raise SandboxError(f"could not stop {record.name} (pid {record.pid})")
        state["processes"] = []
        if self.state_path.exists():
            self._save_state(state)
        return stopped

    def down(self, purge: bool = False) -> list[str]:
        """Stop every recorded process (and only those). Returns the names stopped."""
        with self._lock():
            state = self.load_state()
            stopped = self._stop_all(state) if state else []
            (self.dir / "haproxy.sock").unlink(missing_ok=True)
        if purge and self.dir.exists():
            shutil.rmtree(self.dir)
        return stopped

    # -- status and scenario ----------------------------------------------------------------
    def status(self) -> dict:
        """What runs, where, with which pids, plus live aliases and weights."""
        state = self.load_state()
        if not state:
            return {"schema": STATE_SCHEMA, "dir": str(self.dir), "running": False, "processes": [],
                    "feature_repo": str(features.repo_dir(self.dir))}
        records = self.records(state)
        ports = state.get("ports", {})
        doc = {
            "schema": STATE_SCHEMA,
            "dir": str(self.dir),
            "running": bool(records) and all(r.alive() for r in records),
            "model": state.get("model"),
            "models": state.get("models") or [state.get("model")],
            "config": state.get("config"),
            "versions": state.get("versions", []),
            "rate": state.get("rate"),
            "scenario": self.scenario(),
            "endpoints": {
                "registry": state.get("tracking_uri"),
                "router_frontend": f"http://127.0.0.1:{ports['frontend']}" if ports else None,
                "router_admin_socket": str(self.dir / "haproxy.sock"),
                "router_admin_tcp": f"127.0.0.1:{ports['admin']}" if ports else None,
                "router_metrics": f"http://127.0.0.1:{ports['exporter']}/metrics" if ports else None,
                "prometheus": f"http://127.0.0.1:{ports['prometheus']}" if ports else None,
                "alertmanager": f"http://127.0.0.1:{ports['alertmanager']}" if ports.get("alertmanager") else None,
                "alerts_webhook": f"http://127.0.0.1:{ports['alerts']}/alerts" if ports.get("alerts") else None,
                "model_servers": {v: f"http://127.0.0.1:{p}" for v, p in ports.get("models", {}).items()},
                "fallback_server": f"http://127.0.0.1:{ports['fallback']}" if ports.get("fallback") else None,
            },
            "fallback_version": state.get("fallback_version"),
            "feature_repo": str(features.repo_dir(self.dir)),
            "feature_release": state.get("features"),
            "down_by_scenario": sorted(state.get("down_by_scenario", {})),
            "processes": [
                {"name": r.name, "pid": r.pid, "alive": r.alive(), "log": r.log} for r in records
            ],
            "pids": {r.name: r.pid for r in records},
            "aliases": None,
            "weights": None,
            "errors": [],
        }
        if doc["running"]:
            from console.adapters.haproxy import HAProxyRouter
            from console.adapters.mlflow_registry import MlflowRegistry
            from console.sandbox.templates import backend_name

            try:
                doc["aliases"] = MlflowRegistry(state["tracking_uri"]).get_aliases(state["model"]).aliases
            except RewindError as exc:
                doc["errors"].append(str(exc))
            try:
                router = HAProxyRouter(str(self.dir / "haproxy.sock"), {state["model"]: backend_name(state["model"])})
                doc["weights"] = router.read_state(state["model"]).weights()
            except RewindError as exc:
                doc["errors"].append(str(exc))
        if state.get("models"):
            doc["fleet"] = self._fleet_status(state, doc["running"], doc["errors"])
        return doc

    def _fleet_status(self, state: dict, running: bool, errors: list[str]) -> dict:
        """The further models of a fleet sandbox: versions, servers, backend, live aliases and weights."""
        from console.sandbox.templates import backend_name

        fleet = {}
        for name, servers in state.get("ports", {}).get("fleet", {}).items():
            entry: dict = {"versions": sorted(servers, key=int), "backend": backend_name(name),
                           "model_servers": {v: f"http://127.0.0.1:{p}" for v, p in servers.items()},
                           "aliases": None, "weights": None}
            if running:
                from console.adapters.haproxy import HAProxyRouter
                from console.adapters.mlflow_registry import MlflowRegistry

                try:
                    entry["aliases"] = MlflowRegistry(state["tracking_uri"]).get_aliases(name).aliases
                    router = HAProxyRouter(str(self.dir / "haproxy.sock"), {name: backend_name(name)})
                    entry["weights"] = router.read_state(name).weights()
                except RewindError as exc:
                    errors.append(str(exc))
            fleet[name] = entry
        return fleet

    def scenario(self) -> dict | None:
        """The scenario in force, as written in ``scenario.json``."""
        try:
            return json.loads((self.dir / "scenario.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def set_scenario(self, name: str, version: str | None = None) -> dict:
        """Switch the scenario; version-specific faults hit ``version``, else the version of the scenario's alias.

        ``champion-down`` kills the champion's server (SIGKILL, as a crash would); any
        other scenario starts again a server that ``champion-down`` killed. ``feature-bug``
        applies the feature store's buggy release (``cents``), which every version consuming
        ``fraud_features`` reads; leaving it applies the good release again when the buggy UDF
        is still the active one (Feast then saves it as a new version number).
        """
        if name not in SCENARIOS:
            raise SandboxError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        with self._lock():
            state = self.load_state()
            if not state or not self.running():
                raise SandboxError(f"the sandbox in {self.dir} is not running: start it with `rewind sandbox up`")
            target = version
            if version is not None and version not in state.get("versions", []):
                raise SandboxError(f"the sandbox has no version {version} "
                                   f"(it has {', '.join(state.get('versions', []))})")
            if name in TARGETS and target is None:
                from console.adapters.mlflow_registry import MlflowRegistry

                aliases = MlflowRegistry(state["tracking_uri"]).get_aliases(state["model"])
                target = aliases.version_of(TARGETS[name])
                if target is None:
                    raise SandboxError(f"scenario {name} needs a {TARGETS[name]} alias on {state['model']}, "
                                       "and none is set" + (": start one with `rewind shadow start`"
                                                            if TARGETS[name] == "shadow" else ""))
            self._restart_killed(state)
            previous = (self.scenario() or {}).get("name")
            if name == FEATURE_BUG:
                self.apply_features("cents", state=state)
            elif previous == FEATURE_BUG:
                self.apply_features("good", if_active="cents", state=state)
            write_scenario(self.dir, make_scenario(name, target))
            if name == "champion-down":
                self._kill_server(state, f"model-v{target}")
        return self.scenario() or {}

    def _kill_server(self, state: dict, name: str) -> None:
        """SIGKILL one model server, as a crash would, and remember it so it can be started again."""
        record = next((r for r in self.records(state) if r.name == name), None)
        if record is None:
            raise SandboxError(f"the sandbox has no process {name}")
        processes.kill(record)
        state["processes"] = [p for p in state["processes"] if p["name"] != name]
        state.setdefault("down_by_scenario", {})[name] = record.argv
        self._save_state(state)

    def _restart_killed(self, state: dict) -> None:
        """Start again the servers a ``champion-down`` scenario killed, and wait until they answer."""
        killed = state.pop("down_by_scenario", {})
        if not killed:
            return
        started = [self._launch(state, name, argv, self._env()) for name, argv in killed.items()]
        ports = [argv[argv.index("--port") + 1] for argv in killed.values()]
        self._wait("the restarted model servers", lambda: all(
            _http_ok(f"http://127.0.0.1:{port}/health") for port in ports), started, 60)
