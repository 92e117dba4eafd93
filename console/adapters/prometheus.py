"""The metric catalogue evaluated on Prometheus through prometheus-api-client.

One instant query per catalogue metric per refresh, whatever the number of
versions and segments, every query pinned to the same evaluation time so the
numbers on screen belong together. The queries of one refresh run side by side.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.domain.cells import CellIndex, Columns, FleetIndex, LazyCells
from console.domain.errors import ConfigError, MetricsError
from console.domain.metrics import (
    COUNT_PART_LABEL,
    MetricSpec,
    QueryResult,
    RangeResult,
    canonical_cells,
    collect_series,
    combine_counts,
    evaluation_times,
    parse_sample_value,
    refresh_query,
    render_query,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class _Unusual(Exception):
    """An answer the usual path cannot place (two series on one cell): the careful path reads it."""


def read_secret(env_name: str | None, file_name: str | None, setting: str) -> str | None:
    """A secret from the named environment variable or file, never from the config itself.

    Raises:
        ConfigError: when the named variable is unset or the file cannot be read.
    """
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise ConfigError(f"{setting}_env names {env_name}, which is not set")
        return value.strip()
    if file_name:
        try:
            return Path(file_name).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{setting}_file {file_name}: cannot be read ({exc.strerror})") from None
    return None


def read_headers(literal: Mapping[str, str], from_env: Mapping[str, str], from_files: Mapping[str, str],
                 environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The extra headers every query carries: literal values, and secret ones read now from env or files.

    Raises:
        ConfigError: a named variable is unset, a file unreadable or empty, or a value is not one
            header line; the message names the setting and the variable or file, never the value.
    """
    environ = os.environ if environ is None else environ
    headers = dict(literal)
    for header, env_name in from_env.items():
        value = environ.get(env_name, "").strip()
        if not value:
            raise ConfigError(f"metrics.headers_env.{header} names {env_name}, which is not set")
        headers[header] = value
    for header, file_name in from_files.items():
        setting = f"metrics.headers_file.{header}"
        try:
            value = Path(file_name).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{setting}: {file_name} cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{setting}: {file_name} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"{setting}: {file_name} is empty")
        headers[header] = value
    for header, value in headers.items():
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            where = "metrics.headers" if header in literal else (
                f"metrics.headers_env.{header}" if header in from_env else f"metrics.headers_file.{header}")
            raise ConfigError(f"{where}: the value holds a line break or control character")
    return headers


class _SampleText(Mapping):
    """The raw sample text of each cell, read from the answer the first time someone asks.

    A refresh needs only the numbers; the text (for explanations, the status JSON
    and the journal) is decoded again from the same bytes when it is wanted. The
    cells themselves are known at once, so listing or counting them reads nothing.
    """

    def __init__(self, cells: Mapping[tuple[str, str], object], load: Callable[[], dict]) -> None:
        self._cells = cells
        self._load = load
        self._text: dict | None = None

    def _texts(self) -> dict:
        # Two threads may read it first at once (the console's and a worker): both may decode the text, and
        # neither finds it half made, so the loader (and the answer's bytes) are kept.
        text = self._text
        if text is None:
            text = self._text = self._load()
        return text

    def __getitem__(self, key: tuple[str, str]) -> str:
        return self._texts()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._cells

    def __iter__(self):
        return iter(self._cells)

    def __len__(self) -> int:
        return len(self._cells)

    def __repr__(self) -> str:
        return repr(self._texts())


class _Recent(Mapping):
    """Each cell's values at the evaluation times, oldest first, built the first time someone asks.

    A refresh reads only the cells over the line now (a few, usually) to see whether
    they stayed over it: the other cells' rows are never built.
    """

    def __init__(self, points: Mapping[tuple[str, str], list], first: float, step: float, count: int) -> None:
        self._points, self._first, self._step, self._count = points, first, step, count
        self._rows: dict[tuple[str, str], tuple[float | None, ...]] = {}

    def __getitem__(self, key: tuple[str, str]) -> tuple[float | None, ...]:
        row = self._rows.get(key)
        if row is None:
            points, count = self._points[key], self._count
            if len(points) == count:
                row = tuple(None if value is None or value != value else value for _, value in points)
            else:
                slots: list[float | None] = [None] * count
                for t, value in points:
                    index = round((t - self._first) / self._step)
                    if 0 <= index < count and value is not None and value == value:
                        slots[index] = value
                row = tuple(slots)
            self._rows[key] = row
        return row

    def __iter__(self):
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)


class PrometheusMetrics:
    """A :class:`~console.adapters.protocols.MetricsSource` on Prometheus."""

    def __init__(self, url: str, window: str, version_label: str = "version", segment_label: str = "segment",
                 timeout_s: float = 5.0, bearer_token: str | None = None,
                 basic_auth: tuple[str, str] | None = None, max_parallel: int = 6,
                 headers: Mapping[str, str] | None = None, model_label: str = "model") -> None:
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url
        self.window = window
        self.version_label = version_label
        self.segment_label = segment_label
        self.model_label = model_label
        self.timeout_s = timeout_s
        self.max_parallel = max_parallel
        # Extra headers (a multi-tenant store's X-Scope-OrgID, say) go with every request, readiness's too.
        self._headers = dict(headers or {})
        self._extra_headers = bool(self._headers)
        if bearer_token:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        self._auth = basic_auth
        # One session of our own, configured by prometheus-api-client (auth, TLS, no retries:
        # an incident console reports a dead Prometheus at once rather than after backoffs).
        self._session = requests.Session()
        # requests reads proxies, the CA bundle and ~/.netrc from the environment on every
        # request (two scans of os.environ and a file lookup: measured 0.3 ms of CPU per query,
        # a third of its cost). They are read once, here, with requests' own rules.
        settings = self._session.merge_environment_settings(url, {}, None, None, None)
        self._session.proxies.update(settings["proxies"])
        self._session.verify = settings["verify"]
        if basic_auth is None and not any(h.lower() == "authorization" for h in self._headers):
            self._auth = requests.utils.get_netrc_auth(url)
        self._session.trust_env = False
        self._prom = PrometheusConnect(
            url=url,
            headers=self._headers or None,
            auth=basic_auth,
            retry=Retry(total=0, connect=0, read=0),
            timeout=timeout_s,
            session=self._session,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._typed: Any = None

    def describe(self) -> str:
        """Where the metrics come from (the URL never carries credentials here)."""
        return f"Prometheus at {self.url}"

    def close(self) -> None:
        """Release the HTTP session and the query threads."""
        self._prom.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def _fetch(self, promql: str, at: float) -> tuple[int, bytes]:
        """Send one instant query; the HTTP status and the whole body.

        Raises:
            MetricsError: when Prometheus cannot be reached or the exchange breaks.
        """
        return self._get("query", {"query": promql, "time": f"{at:.3f}"})

    def _fetch_range(self, promql: str, start: float, end: float, step: float) -> tuple[int, bytes]:
        """Send one range query; the HTTP status and the whole body (MetricsError as :meth:`_fetch`)."""
        return self._get("query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                         "step": f"{step:g}"})

    def _get(self, endpoint: str, params: dict[str, str]) -> tuple[int, bytes]:
        import requests
        import urllib3

        try:
            response = self._session.get(
                f"{self.url}/api/v1/{endpoint}",
                params=params,
                headers=self._headers,
                auth=self._auth,
                timeout=self.timeout_s,
                stream=True,
            )
            # One read of the whole body: requests' default 10 KB chunking costs more than decoding.
            content = response.raw.read(decode_content=True)
            response.close()
        except requests.exceptions.ConnectionError:
            raise MetricsError(f"{self.describe()}: unreachable (metrics.url)") from None
        except requests.exceptions.Timeout:
            raise MetricsError(f"{self.describe()}: no answer within {self.timeout_s:g}s (metrics.timeout_s)") from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise MetricsError(f"{self.describe()}: the exchange failed ({exc.__class__.__name__})") from None
        if response.status_code in (401, 403):
            settings = "metrics.auth or metrics.headers" if self._extra_headers else "metrics.auth"
            raise MetricsError(
                f"{self.describe()}: refused the credentials (HTTP {response.status_code}, {settings})")
        return response.status_code, content

    def _answer_data(self, status: int, content: bytes) -> tuple[dict, str | None]:
        """The ``data`` of a successful answer, or ``{}`` and Prometheus' reason it is not one.

        Raises:
            MetricsError: the body is not JSON at all.
        """
        import orjson

        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise self._not_json(status) from None
        if status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            body = body if isinstance(body, dict) else {}
            return {}, f"{body.get('errorType', 'error')}: {body.get('error', 'HTTP ' + str(status))}"[:300]
        data = body.get("data")
        return (data if isinstance(data, dict) else {}), None

    def _not_json(self, status: int) -> MetricsError:
        return MetricsError(f"{self.describe()}: HTTP {status} with a body that is not Prometheus JSON (metrics.url)")

    @staticmethod
    def _typed_vector(decoder: Any, status: int, content: bytes) -> list:
        """The series of a successful instant-vector answer, by a typed decoder.

        Raises:
            msgspec.ValidationError: an error, another shape, or a series the decoder cannot type.
            msgspec.DecodeError: not JSON at all.
        """
        import msgspec

        if status != 200:
            raise msgspec.ValidationError("not a success")
        typed = decoder.decode(content)
        if typed.status != "success" or typed.data.resultType != "vector":
            raise msgspec.ValidationError("not an instant vector")
        return typed.data.result

    def _typed_decoder(self, text: bool = False) -> Any:
        """A decoder for a successful instant-vector answer that keeps only what a cell needs.

        At 24,000 series a refresh's CPU goes mostly into building Python objects
        from JSON. Decoding into typed structs that hold just the version and
        segment labels, with each sample read straight into a float (msgspec's
        lax mode parses Prometheus' quoted numbers, NaN and -Inf included),
        avoids building the label dicts and the sample strings (measured: decoding
        and indexing take about 40 % less than with orjson and dicts, and a
        further 25 % less than reading the sample text and parsing it after).

        Args:
            text: the decoder that keeps each sample's text exactly as sent
                instead, for the raw values an explanation shows.
        """
        decoders = self._typed if self._typed is not None else {}
        if text not in decoders:
            import msgspec

            # Both labels required: a series without one takes the careful path, which counts it.
            labels = msgspec.defstruct(
                "Labels", [("version", str), ("segment", str)],
                rename={"version": self.version_label, "segment": self.segment_label}, gc=False)
            sample = msgspec.defstruct("Sample", [("metric", labels), ("value", tuple[float, str if text else float])],
                                       gc=False)
            data = msgspec.defstruct("Data", [("resultType", str), ("result", list[sample])], gc=False)
            body = msgspec.defstruct("Body", [("status", str), ("data", data)], gc=False)
            decoders[text] = msgspec.json.Decoder(body, strict=text)
            self._typed = decoders
        return decoders[text]

    def _decode(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                index: CellIndex | None = None) -> QueryResult:
        """Turn one answer into a result (at scale, most of a refresh's CPU is spent here).

        With ``index`` (the refresh's cells), the values are placed as columns over it
        (:class:`~console.domain.cells.Columns`), and the mappings by cell are made only when read.
        """
        import msgspec

        try:
            series = self._typed_vector(self._typed_decoder(), status, content)
            if index is not None:
                return self._value_columns(spec, promql, at, series, lambda: self._sample_text(content), index)
            cells = {(s.metric.version, s.metric.segment): s.value[1] for s in series}
        except msgspec.ValidationError:  # also a sample lax mode does not read, such as "+Inf"
            return self._decode_unusual(spec, promql, at, status, content)
        except msgspec.DecodeError:
            raise self._not_json(status) from None
        except _Unusual:  # two series for one cell: the careful path says so
            return self._decode_unusual(spec, promql, at, status, content)
        if len(cells) != len(series):  # two series for one cell: the careful path says so
            return self._decode_unusual(spec, promql, at, status, content)
        try:
            cells = canonical_cells(cells)
        except ValueError as exc:
            return QueryResult(spec.name, promql, at, error=str(exc))
        # NaN (number != number) is no data: left out, so the cell reads as None.
        values = {key: number for key, number in cells.items() if number == number}
        return QueryResult(spec.name, promql, at, raw=_SampleText(cells, lambda: self._sample_text(content)),
                           values=values)

    @staticmethod
    def _value_columns(spec: MetricSpec, promql: str, at: float, series: list, text: Callable[[], dict],
                       index: CellIndex) -> QueryResult:
        """An instant answer's values as columns over the refresh's cells (raises :class:`_Unusual` for two
        series on one cell)."""
        import numpy as np

        numbers = index.place([(s.metric.version, s.metric.segment) for s in series])
        if Columns.has_duplicates(numbers):
            raise _Unusual
        value = np.fromiter((s.value[1] for s in series), np.float64, len(series))
        return PrometheusMetrics._value_result(spec, promql, at, index, numbers, value, text)

    @staticmethod
    def _value_result(spec: MetricSpec, promql: str, at: float, index: CellIndex, numbers: NDArray[np.intp],
                      value: NDArray[np.float64], text: Callable[[], dict]) -> QueryResult:
        """An instant answer's result from its cells' numbers and values (NaN: no data)."""
        import numpy as np

        known = ~np.isnan(value)  # NaN is no data: not listed, so the cell reads as None
        columns = Columns(index, numbers[known], value[known])
        every = Columns(index, numbers, value)
        return QueryResult(spec.name, promql, at, columns=columns, values=LazyCells(columns.values_by_cell),
                           raw=_SampleText(LazyCells(lambda: dict.fromkeys(every.keys())), text))

    def _sample_text(self, content: bytes) -> dict:
        """Each cell's sample text exactly as Prometheus sent it, read again from the answer."""
        import msgspec

        try:
            series = self._typed_decoder(text=True).decode(content).data.result
            return canonical_cells({(s.metric.version, s.metric.segment): s.value[1] for s in series})
        except msgspec.ValidationError:  # samples sent as JSON numbers, not the usual strings
            import orjson

            return canonical_cells({
                (item["metric"][self.version_label], item["metric"][self.segment_label]): str(item["value"][1])
                for item in orjson.loads(content)["data"]["result"]})

    def _decode_unusual(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes) -> QueryResult:
        """The careful path for errors and answers of another shape, with the reason kept."""
        data, reason = self._answer_data(status, content)
        if reason:
            return QueryResult(spec.name, promql, at, error=reason)
        if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            return QueryResult(spec.name, promql, at,
                               error=f"the query returns a {data.get('resultType', 'malformed result')}, "
                                     "not an instant vector by version and segment")
        try:
            return self._result(spec, promql, at, lambda: collect_series(
                data["result"], self.version_label, self.segment_label))
        except (KeyError, IndexError, TypeError, AttributeError):
            return QueryResult(spec.name, promql, at, error="the answer's series are malformed")

    def _result(self, spec: MetricSpec, promql: str, at: float, index: Callable[[], tuple]) -> QueryResult:
        try:
            raw, values, unplaced = index()
        except ValueError as exc:
            return QueryResult(spec.name, promql, at, error=str(exc))
        error = None
        if unplaced and not raw:
            error = (
                f"{unplaced} series lack the {self.version_label!r} or {self.segment_label!r} label "
                "(metrics.version_label / segment_label)"
            )
        return QueryResult(spec.name, promql, at, raw=raw, error=error, values=values)

    def evaluate(self, specs: tuple[MetricSpec, ...], model: str, at: float | None = None) -> dict[str, QueryResult]:
        """Evaluate every catalogue metric once, all at the same instant.

        The queries wait on Prometheus side by side; their answers are decoded
        one after another on the calling thread, because decoding is CPU work
        that threads would only fight over (measured: twice the CPU when six
        threads decode at once).

        Returns:
            One result per metric; a query Prometheus rejects becomes a result
            with an error (its cells show *no data*), not an exception.

        Raises:
            MetricsError: when Prometheus cannot be reached at all.
        """
        at = time.time() if at is None else at
        queries = [(spec, refresh_query(spec, model, self.window)) for spec in specs]
        answers = self._send_all(queries, at)
        index = CellIndex()  # the refresh's cells, numbered once for every metric (the judge reads columns)
        return {
            spec.name: self._decode_refresh(spec, promql, at, status, content, index)
            for (spec, promql), (status, content) in zip(queries, answers, strict=True)
        }

    def _send_all(self, queries: list[tuple[MetricSpec, str]], at: float) -> list[tuple[int, bytes]]:
        """Send a refresh's queries side by side; the answers in the same order."""
        if len(queries) <= 1 or self.max_parallel <= 1:
            return [self._send(spec, promql, at) for spec, promql in queries]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="promql")
        futures = [self._pool.submit(self._send, spec, promql, at) for spec, promql in queries]
        return [future.result() for future in futures]

    def evaluate_fleet(self, specs: tuple[MetricSpec, ...], models: Sequence[str],
                       at: float | None = None) -> dict[str, dict[str, QueryResult]]:
        """Evaluate every catalogue metric for every model at once: one query per metric, whatever the fleet's size.

        Each query asks for every model (:func:`~console.domain.fleet.fleet_refresh_query`: the model's
        matcher over the fleet, ``metrics.model_label`` kept in every grouping), and its answer is split by
        that label into one result per model, the same result :meth:`evaluate` gives for that model alone.

        Returns:
            model -> metric -> result, for every model asked for (a model with no series has *no data*);
            a metric whose template cannot be asked for the whole fleet, or that Prometheus rejects,
            gives every model a result with an error, not an exception.

        Raises:
            MetricsError: when Prometheus cannot be reached at all.
        """
        from console.domain.fleet import fleet_refresh_query

        at = time.time() if at is None else at
        fleet = tuple(dict.fromkeys(models))
        if not fleet:
            return {}
        queries: list[tuple[MetricSpec, str]] = []
        refused: dict[str, str] = {}
        for spec in specs:
            try:
                queries.append((spec, fleet_refresh_query(spec, fleet, self.window, self.model_label)))
            except ValueError as exc:
                refused[spec.name] = (f"the query cannot be asked for the whole fleet: {exc} "
                                      f"(metrics.catalogue[{spec.name}], metrics.model_label)")
        answers = dict(zip([spec.name for spec, _ in queries], self._send_all(queries, at), strict=True))
        sent = dict((spec.name, promql) for spec, promql in queries)
        results: dict[str, dict[str, QueryResult]] = {model: {} for model in fleet}
        cells = FleetIndex(fleet)  # each model's cells, numbered once for its metrics
        for spec in specs:
            if spec.name in refused:
                failed = QueryResult(spec.name, "", at, error=refused[spec.name])
                split = dict.fromkeys(fleet, failed)
            else:
                status, content = answers[spec.name]
                split = self._decode_fleet(spec, sent[spec.name], at, status, content, cells)
            for model in fleet:
                results[model][spec.name] = split[model]
        return results

    def _decode_fleet(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                      cells: FleetIndex) -> dict[str, QueryResult]:
        """One fleet answer split by model into each model's result (as :meth:`_decode_refresh` would give it),
        the usual answers as columns over each model's index."""
        import msgspec

        try:
            if spec.counts:
                return self._fleet_counts(spec, promql, at, status, content, cells)
            if spec.persists:
                return self._fleet_recent(spec, promql, at, status, content, cells)
            return self._fleet_values(spec, promql, at, status, content, cells)
        except msgspec.ValidationError:  # an error, another shape, unlabelled series, "+Inf", a cell twice
            return self._fleet_careful(spec, promql, at, status, content, cells.models)
        except msgspec.DecodeError:
            raise self._not_json(status) from None

    def _fleet_decoder(self, shape: str) -> Any:
        """A typed decoder of a fleet answer: ``value`` (instant), ``counts`` (with the part) or ``range``."""
        decoders = getattr(self, "_fleet_typed", None)
        if decoders is None:
            decoders = self._fleet_typed = {}
        if shape not in decoders:
            import msgspec

            fields: list[tuple[str, type]] = [("version", str), ("segment", str), ("model", str)]
            rename = {"version": self.version_label, "segment": self.segment_label, "model": self.model_label}
            if shape == "counts":
                fields.append(("part", str))
                rename["part"] = COUNT_PART_LABEL
            labels = msgspec.defstruct(f"Fleet{shape}Labels", fields, rename=rename, gc=False)
            if shape == "range":
                item = msgspec.defstruct("FleetSeries", [("metric", labels), ("values", list[tuple[float, float]])],
                                         gc=False)
            else:
                item = msgspec.defstruct(f"Fleet{shape}Sample", [("metric", labels), ("value", tuple[float, float])],
                                         gc=False)
            data = msgspec.defstruct(f"Fleet{shape}Data", [("resultType", str), ("result", list[item])], gc=False)
            body = msgspec.defstruct(f"Fleet{shape}Body", [("status", str), ("data", data)], gc=False)
            decoders[shape] = msgspec.json.Decoder(body, strict=False)
        return decoders[shape]

    @staticmethod
    def _fleet_keys(series: list) -> list[tuple[str, str, str]]:
        return [(labels.model, labels.version, labels.segment) for labels in (item.metric for item in series)]

    def _fleet_values(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                      fleet: FleetIndex) -> dict[str, QueryResult]:
        import msgspec
        import numpy as np

        series = self._typed_vector(self._fleet_decoder("value"), status, content)
        cells = fleet.place(self._fleet_keys(series))
        if cells.with_duplicates():
            raise msgspec.ValidationError("several series for one cell")
        value = np.fromiter((item.value[1] for item in series), np.float64, len(series))[cells.order]
        texts: dict[str, dict] = {}

        def text_of(model: str) -> Callable[[], dict]:
            def load() -> dict:
                if not texts:
                    texts.update(self._fleet_sample_text(content, fleet.models))
                return texts.get(model, {})
            return load

        return {model: self._value_result(spec, promql, at, fleet.indexes[number], cells.at[part], value[part],
                                          text_of(model))
                for number, model in enumerate(fleet.models) for part in (cells.bounds(number),)}

    def _fleet_sample_text(self, content: bytes, fleet: tuple[str, ...]) -> dict[str, dict]:
        """Each model's cells' sample text exactly as Prometheus sent it, read again from the answer."""
        import orjson

        texts: dict[str, dict] = {model: {} for model in fleet}
        for item in orjson.loads(content)["data"]["result"]:
            labels = item["metric"]
            cells = texts.get(labels[self.model_label])
            if cells is not None:
                cells[(labels[self.version_label], labels[self.segment_label])] = str(item["value"][1])
        return {model: canonical_cells(cells) for model, cells in texts.items()}

    def _fleet_counts(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                      fleet: FleetIndex) -> dict[str, QueryResult]:
        """A ratio's fleet answer: the usual models' counts as columns, checked for the whole fleet at once; a
        model whose counts are not the usual answer (a part missing or twice, an impossible count) is read as
        :func:`combine_counts` reads it, and explained."""
        import numpy as np

        series = self._typed_vector(self._fleet_decoder("counts"), status, content)
        numbered = {"numerator": 0, "denominator": 1}
        part = np.fromiter((numbered.get(item.metric.part, -1) for item in series), np.intp, len(series))
        if not (known_part := part >= 0).all():  # series of another part are not counts: left out
            series = [item for item, keep in zip(series, known_part.tolist(), strict=True) if keep]
            part = part[known_part]
        cells = fleet.place(self._fleet_keys(series))
        count = np.fromiter((item.value[1] for item in series), np.float64, len(series))[cells.order]
        denominator = part[cells.order] == 1
        flat, model_of_flat = fleet.flat(cells)
        size = len(model_of_flat)
        # Usual: every cell once in each part, every count usable; the models with any other cell are not.
        per_part = [np.bincount(flat[denominator == is_denominator], minlength=size) for is_denominator in (0, 1)]
        unusual = set(model_of_flat[(per_part[1] > 1) | (per_part[0] != per_part[1])].tolist())
        numerators = np.full(size, np.nan)
        numerators[flat[~denominator]] = count[~denominator]
        successes, trials = numerators[flat[denominator]], count[denominator]
        with np.errstate(invalid="ignore", divide="ignore"):
            usable = (successes >= 0) & (successes <= trials) & (trials > 0) & (trials < np.inf)
            value = successes / trials
        model = cells.model[denominator]
        unusual.update(model[~usable].tolist())
        at_ = cells.at[denominator]
        ends = np.cumsum(np.bincount(model, minlength=len(fleet.models))).tolist()
        results = {}
        for number, name in enumerate(fleet.models):
            if number in unusual:
                items = [series[i] for i in cells.order[cells.bounds(number)].tolist()]
                results[name] = self._fleet_counts_careful(spec, promql, at, items)
                continue
            part_ = slice(ends[number - 1] if number else 0, ends[number])
            results[name] = self._counts_from_columns(spec, promql, at, fleet.indexes[number], at_[part_],
                                                      value[part_], successes[part_], trials[part_])
        return results

    def _fleet_counts_careful(self, spec: MetricSpec, promql: str, at: float, items: list) -> QueryResult:
        """One model's counts that are not the usual answer, checked and explained (:func:`combine_counts`)."""
        import msgspec

        parts = self._count_parts(items)
        if parts is None:
            raise msgspec.ValidationError("several series for one cell")  # the careful path says so
        try:
            numerators, denominators = canonical_cells(parts[0]), canonical_cells(parts[1])
        except ValueError as exc:
            return QueryResult(spec.name, promql, at, error=str(exc))
        return self._counts_result(spec, promql, at, numerators, denominators)

    def _fleet_recent(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                      fleet: FleetIndex) -> dict[str, QueryResult]:
        import msgspec
        import numpy as np

        times = evaluation_times(spec, at)
        first, step, count = times[0], spec.criteria.step_s, len(times)
        if status != 200:
            raise msgspec.ValidationError("not a success")
        typed = self._fleet_decoder("range").decode(content)
        if typed.status != "success" or typed.data.resultType != "matrix":
            raise msgspec.ValidationError("not a matrix")
        series = typed.data.result
        cells = fleet.place(self._fleet_keys(series))
        lengths = np.fromiter((len(item.values) for item in series), np.intp, len(series))[cells.order]
        # Usual: one series per cell, each with a point at every evaluation time; the other models are read
        # point by point.
        unusual = set(cells.model[lengths != count].tolist()) | cells.with_duplicates()
        usual = ~np.isin(cells.model, list(unusual)) if unusual else np.ones(len(cells.order), dtype=bool)
        ordered, model = cells.order[usual], cells.model[usual]
        points = np.fromiter(chain.from_iterable(chain.from_iterable(series[i].values for i in ordered.tolist())),
                             np.float64, len(ordered) * count * 2)
        rows = points.reshape(len(ordered), count, 2)[:, :, 1]
        at_ = cells.at[usual]
        ends = np.cumsum(np.bincount(model, minlength=len(fleet.models))).tolist()
        results = {}
        for number, name in enumerate(fleet.models):
            if number not in unusual:
                part = slice(ends[number - 1] if number else 0, ends[number])
                results[name] = self._recent_from_columns(spec, promql, at, fleet.indexes[number], at_[part],
                                                          rows[part])
                continue
            items = [series[i] for i in cells.order[cells.bounds(number)].tolist()]
            by_cell = {(item.metric.version, item.metric.segment): item.values for item in items}
            if len(by_cell) != len(items):
                raise msgspec.ValidationError("several series for one cell")  # the careful path says so
            try:
                by_cell = canonical_cells(by_cell)
            except ValueError as exc:
                results[name] = QueryResult(spec.name, promql, at, error=str(exc))
                continue
            results[name] = self._recent_result(spec, promql, at, by_cell, first, step, count)
        return results

    def _fleet_careful(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                       fleet: tuple[str, ...]) -> dict[str, QueryResult]:
        """The careful path of a fleet answer: each model's series decoded as :meth:`evaluate` decodes its own.

        An error or an answer of another shape is one result for every model; series without the
        model label are counted, and when no series has it the whole metric says so.
        """
        import orjson

        data, reason = self._answer_data(status, content)
        if reason or data.get("resultType") not in ("vector", "matrix") or not isinstance(data.get("result"), list):
            shared = self._decode_refresh(spec, promql, at, status, content)
            return dict.fromkeys(fleet, shared)
        groups: dict[str, list] = {model: [] for model in fleet}
        unlabelled = 0
        for item in data["result"]:
            labels = item.get("metric") if isinstance(item, dict) else None
            model = labels.get(self.model_label) if isinstance(labels, dict) else None
            if model is None:
                unlabelled += 1
            elif model in groups:
                groups[model].append(item)
        if unlabelled and not any(groups.values()):
            failed = QueryResult(spec.name, promql, at, error=(
                f"{unlabelled} series lack the {self.model_label!r} label that tells the models apart "
                f"(metrics.model_label, metrics.catalogue[{spec.name}])"))
            return dict.fromkeys(fleet, failed)
        return {
            model: self._decode_refresh(spec, promql, at, status, orjson.dumps(
                {"status": "success", "data": {"resultType": data["resultType"], "result": items}}))
            for model, items in groups.items()
        }

    def _send(self, spec: MetricSpec, promql: str, at: float) -> tuple[int, bytes]:
        """A refresh's query for one metric: a range over its last evaluations when it persists, else instant."""
        if spec.persists:
            times = evaluation_times(spec, at)
            return self._fetch_range(promql, times[0], times[-1], spec.criteria.step_s)
        return self._fetch(promql, at)

    def _decode_refresh(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                        index: CellIndex | None = None) -> QueryResult:
        if spec.counts:
            return self._decode_counts(spec, promql, at, status, content, index)
        if spec.persists:
            return self._decode_recent(spec, promql, at, status, content, index)
        return self._decode(spec, promql, at, status, content, index)

    def _decode_counts(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                       index: CellIndex | None = None) -> QueryResult:
        """A ratio's counts query: numerator and denominator per cell, told apart by ``rewind_part``."""
        import msgspec

        try:
            series = self._typed_vector(self._counts_decoder(), status, content)
            if index is not None and (usual := self._counts_columns(spec, promql, at, series, index)) is not None:
                return usual
            parts = self._count_parts(series)
            if parts is None:
                return QueryResult(spec.name, promql, at, error=(
                    f"the counts return several series for one (version, segment) cell: aggregate them with "
                    f"sum by (version, segment) (metrics.catalogue[{spec.name}].counts)"))
            numerators, denominators = canonical_cells(parts[0]), canonical_cells(parts[1])
        except msgspec.ValidationError:  # an error, another shape, unlabelled series, or "+Inf"
            careful = self._counts_careful(spec, promql, at, status, content)
            if isinstance(careful, QueryResult):
                return careful
            numerators, denominators = careful
        except msgspec.DecodeError:
            raise self._not_json(status) from None
        except ValueError as exc:
            return QueryResult(spec.name, promql, at, error=str(exc))
        return self._counts_result(spec, promql, at, numerators, denominators)

    @staticmethod
    def _count_parts(series: list) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]] | None:
        """A counts answer's numerators and denominators by cell; ``None`` when a cell has two series of one part."""
        parts: dict[str, dict[tuple[str, str], float]] = {"numerator": {}, "denominator": {}}
        placed = 0
        for item in series:
            part = parts.get(item.metric.part)
            if part is not None:
                part[(item.metric.version, item.metric.segment)] = item.value[1]
                placed += 1
        if placed != len(parts["numerator"]) + len(parts["denominator"]):
            return None
        return parts["numerator"], parts["denominator"]

    @staticmethod
    def _counts_columns(spec: MetricSpec, promql: str, at: float, series: list, index: CellIndex
                        ) -> QueryResult | None:
        """The usual counts answer as columns over the refresh's cells: every cell once in each part, every
        count usable. ``None`` for anything else, which :func:`combine_counts` checks and explains."""
        import numpy as np

        parts: dict[str, tuple[list, list]] = {"numerator": ([], []), "denominator": ([], [])}
        for item in series:
            part = parts.get(item.metric.part)
            if part is not None:
                part[0].append((item.metric.version, item.metric.segment))
                part[1].append(item.value[1])
        (num_keys, num_values), (den_keys, den_values) = parts["numerator"], parts["denominator"]
        if len(num_keys) != len(den_keys):
            return None
        num_at, den_at = index.place(num_keys), index.place(den_keys)
        if Columns.has_duplicates(den_at) or not np.array_equal(np.sort(num_at), np.sort(den_at)):
            return None
        trials = np.array(den_values, dtype=np.float64)
        successes = Columns.spread(np.array(num_values, dtype=np.float64), num_at, len(index))[den_at]
        with np.errstate(invalid="ignore"):
            if not ((successes >= 0) & (successes <= trials) & (trials > 0) & (trials < np.inf)).all():
                return None
            value = successes / trials
        return PrometheusMetrics._counts_from_columns(spec, promql, at, index, den_at, value, successes, trials)

    @staticmethod
    def _counts_from_columns(spec: MetricSpec, promql: str, at: float, index: CellIndex, numbers: NDArray[np.intp],
                             value: NDArray[np.float64], successes: NDArray[np.float64],
                             trials: NDArray[np.float64]) -> QueryResult:
        """A ratio's result from its usual counts as columns: each cell's proportion, successes and trials."""
        columns = Columns(index, numbers, value, successes, trials)
        values: LazyCells[float] = LazyCells(columns.values_by_cell)
        return QueryResult(spec.name, promql, at, columns=columns, values=values,
                           counts=LazyCells(columns.counts_by_cell),
                           raw=_SampleText(values, lambda: {key: repr(value) for key, value in values.items()}))

    @staticmethod
    def _counts_result(spec: MetricSpec, promql: str, at: float, numerators: dict, denominators: dict) -> QueryResult:
        """A ratio's result from its numerators and denominators by cell, checked (:func:`combine_counts`)."""
        values, counts, problems, error = combine_counts(spec, numerators, denominators)
        if error:
            return QueryResult(spec.name, promql, at, error=error)
        raw = _SampleText(values, lambda: {key: ("NaN" if value is None else repr(value))
                                           for key, value in values.items()})
        return QueryResult(spec.name, promql, at, raw=raw, values={k: v for k, v in values.items() if v is not None},
                           counts=counts, problems=problems)

    def _counts_careful(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes
                        ) -> QueryResult | tuple[dict, dict]:
        """The careful path for a counts answer: an error result, or the numerators and denominators by cell."""
        data, reason = self._answer_data(status, content)
        if reason or data.get("resultType") != "vector":
            return self._decode_unusual(spec, promql, at, status, content)
        parts: dict[str, dict[tuple[str, str], float]] = {"numerator": {}, "denominator": {}}
        unplaced = placed = 0
        try:
            for item in data["result"]:
                labels = item["metric"]
                part = parts.get(labels.get(COUNT_PART_LABEL))
                version, segment = labels.get(self.version_label), labels.get(self.segment_label)
                if part is None or version is None or segment is None:
                    unplaced += 1
                    continue
                value = parse_sample_value(str(item["value"][1]))
                part[(version, segment)] = math.nan if value is None else value
                placed += 1
            if placed != len(parts["numerator"]) + len(parts["denominator"]):
                raise ValueError(f"the counts return several series for one (version, segment) cell: aggregate "
                                 f"them with sum by (version, segment) (metrics.catalogue[{spec.name}].counts)")
            numerators, denominators = canonical_cells(parts["numerator"]), canonical_cells(parts["denominator"])
        except (KeyError, IndexError, TypeError, AttributeError):
            return QueryResult(spec.name, promql, at, error="the answer's series are malformed")
        except ValueError as exc:
            return QueryResult(spec.name, promql, at, error=str(exc))
        if unplaced and not placed:
            return QueryResult(spec.name, promql, at, error=(
                f"{unplaced} series lack the {self.version_label!r} or {self.segment_label!r} label "
                f"(metrics.version_label / segment_label, metrics.catalogue[{spec.name}].counts)"))
        return numerators, denominators

    def _counts_decoder(self) -> Any:
        """A typed decoder for a counts answer: version, segment and part labels, each count a float."""
        decoder = getattr(self, "_counts_typed", None)
        if decoder is None:
            import msgspec

            labels = msgspec.defstruct(
                "CountLabels", [("version", str), ("segment", str), ("part", str)],
                rename={"version": self.version_label, "segment": self.segment_label, "part": COUNT_PART_LABEL},
                gc=False)
            sample = msgspec.defstruct("CountSample", [("metric", labels), ("value", tuple[float, float])], gc=False)
            data = msgspec.defstruct("CountData", [("resultType", str), ("result", list[sample])], gc=False)
            body = msgspec.defstruct("CountBody", [("status", str), ("data", data)], gc=False)
            decoder = self._counts_typed = msgspec.json.Decoder(body, strict=False)
        return decoder

    def _decode_recent(self, spec: MetricSpec, promql: str, at: float, status: int, content: bytes,
                       index: CellIndex | None = None) -> QueryResult:
        """A persistence range answer: each cell's values at the last evaluation times, the current one last."""
        import msgspec

        times = evaluation_times(spec, at)
        first, step, count = times[0], spec.criteria.step_s, len(times)
        try:
            if status != 200:
                raise msgspec.ValidationError("not a success")
            typed = self._range_decoder().decode(content)
            if typed.status != "success" or typed.data.resultType != "matrix":
                raise msgspec.ValidationError("not a matrix")
            if index is not None and (usual := self._recent_columns(spec, promql, at, typed.data.result, count,
                                                                    index)) is not None:
                return usual
            by_cell = {(s.metric.version, s.metric.segment): s.values for s in typed.data.result}
            if len(by_cell) != len(typed.data.result):
                raise msgspec.ValidationError("several series for one cell")  # the careful path says so
            by_cell = canonical_cells(by_cell)
        except msgspec.ValidationError:  # an error, another shape, unlabelled series, or "+Inf"
            history = self._decode_range(spec.name, promql, first, times[-1], step, status, content)
            if history.error:
                return QueryResult(spec.name, promql, at, error=history.error)
            by_cell = history.series
        except msgspec.DecodeError:
            raise self._not_json(status) from None
        except ValueError as exc:
            return QueryResult(spec.name, promql, at, error=str(exc))
        return self._recent_result(spec, promql, at, by_cell, first, step, count)

    @staticmethod
    def _recent_columns(spec: MetricSpec, promql: str, at: float, series: list, count: int, index: CellIndex
                        ) -> QueryResult | None:
        """The usual range answer as columns over the refresh's cells: one series per cell, each with a point
        at every evaluation time. ``None`` for anything else (the careful path reads it)."""
        import numpy as np

        if any(len(s.values) != count for s in series):
            return None
        numbers = index.place([(s.metric.version, s.metric.segment) for s in series])
        if Columns.has_duplicates(numbers):
            return None
        points = np.fromiter(chain.from_iterable(chain.from_iterable(s.values for s in series)), np.float64,
                             len(series) * count * 2)
        return PrometheusMetrics._recent_from_columns(spec, promql, at, index, numbers,
                                                      points.reshape(len(series), count, 2)[:, :, 1])

    @staticmethod
    def _recent_from_columns(spec: MetricSpec, promql: str, at: float, index: CellIndex, numbers: NDArray[np.intp],
                             rows: NDArray[np.float64]) -> QueryResult:
        """A persistence result from each cell's values at the evaluation times as rows (the current one last)."""
        import numpy as np

        now = rows[:, -1]
        known = ~np.isnan(now)  # no value now is no data: not listed, so the cell reads as None
        columns = Columns(index, numbers[known], now[known], rows=rows, rows_at=numbers)

        def recent() -> dict:
            return {key: tuple(None if v != v else v for v in row)
                    for key, row in zip(columns.keys(numbers), rows.tolist(), strict=True)}

        values: LazyCells[float] = LazyCells(columns.values_by_cell)
        return QueryResult(spec.name, promql, at, columns=columns, values=values, recent=LazyCells(recent),
                           raw=_SampleText(values, lambda: {key: repr(value) for key, value in values.items()}))

    @staticmethod
    def _recent_result(spec: MetricSpec, promql: str, at: float, by_cell: Mapping[tuple[str, str], Any],
                       first: float, step: float, count: int) -> QueryResult:
        """A persistence result from each cell's points at the evaluation times (the current one last)."""
        recent = _Recent(by_cell, first, step, count)
        values = {}
        for key, points in by_cell.items():
            if len(points) == count:  # the usual answer: a point at every evaluation time, the last one now
                value = points[-1][1]
                if value is not None and value == value:
                    values[key] = value
            elif (row := recent[key])[-1] is not None:
                values[key] = row[-1]
        raw = _SampleText(values, lambda: {key: repr(value) for key, value in values.items()})
        return QueryResult(spec.name, promql, at, raw=raw, values=values, recent=recent)

    def _range_decoder(self) -> Any:
        """A typed decoder for a range answer: version and segment labels, each point read as floats."""
        decoder = getattr(self, "_range_typed", None)
        if decoder is None:
            import msgspec

            labels = msgspec.defstruct(
                "RangeLabels", [("version", str), ("segment", str)],
                rename={"version": self.version_label, "segment": self.segment_label}, gc=False)
            series = msgspec.defstruct("RangeSeries", [("metric", labels), ("values", list[tuple[float, float]])],
                                       gc=False)
            data = msgspec.defstruct("RangeData", [("resultType", str), ("result", list[series])], gc=False)
            body = msgspec.defstruct("RangeBody", [("status", str), ("data", data)], gc=False)
            decoder = self._range_typed = msgspec.json.Decoder(body, strict=False)
        return decoder

    def history(self, specs: tuple[MetricSpec, ...], model: str, start: float, end: float,
                step: float) -> dict[str, RangeResult]:
        """Each metric's value query over ``[start, end]`` every ``step`` seconds, one range query each.

        Returns:
            One result per metric; a query Prometheus rejects becomes a result
            with an error, not an exception.

        Raises:
            MetricsError: when Prometheus cannot be reached at all.
        """
        # A ratio's history is read through its counts, so the post-mortem can judge each point as a
        # refresh does; the value (numerator over denominator) is the same as its value query's.
        queries = [(spec, refresh_query(spec, model, self.window) if spec.counts
                    else render_query(spec.query, model, self.window)) for spec in specs]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="promql")
        futures = [self._pool.submit(self._fetch_range, promql, start, end, step) for _, promql in queries]
        results = {}
        for (spec, promql), future in zip(queries, futures, strict=True):
            status, content = future.result()
            result = self._decode_range(spec.name, promql, start, end, step, status, content,
                                        part_label=COUNT_PART_LABEL if spec.counts else None)
            results[spec.name] = _counted_history(result) if spec.counts and not result.error else result
        return results

    def _decode_range(self, metric: str, promql: str, start: float, end: float, step: float, status: int,
                      content: bytes, part_label: str | None = None) -> RangeResult:
        """A range answer (``matrix``) indexed by cell; errors and other shapes become a result with an error."""
        def failed(reason: str) -> RangeResult:
            return RangeResult(metric, promql, start, end, step, error=reason[:300])

        data, reason = self._answer_data(status, content)
        if reason:
            return failed(reason)
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            return failed(f"the range query returns a {data.get('resultType', 'malformed result')}, not a matrix")
        series: dict[tuple[str, str], tuple] = {}
        placed = 0
        try:
            for item in data["result"]:
                labels = item["metric"]
                version, segment = labels.get(self.version_label), labels.get(self.segment_label)
                if version is None or segment is None:
                    continue
                if part_label is not None:  # a ratio's counts: the part rides in the segment's place
                    segment = f"{segment}\x00{labels.get(part_label)}"
                placed += 1
                series[(version, segment)] = tuple((float(t), parse_sample_value(v)) for t, v in item["values"])
            series = canonical_cells(series)
        except (KeyError, IndexError, TypeError, AttributeError):
            return failed("the answer's series are malformed")
        except ValueError as exc:
            return failed(str(exc))
        if len(series) != placed:
            return failed(f"the query returns {placed} series for {len(series)} (version, segment) cells: "
                          "aggregate them, for example with sum by (version, segment)")
        return RangeResult(metric, promql, start, end, step, series=series)


def _counted_history(result: RangeResult) -> RangeResult:
    """A ratio's counts history (parts keyed ``segment\\x00part``) as values and ``(t, num, den)`` counts."""
    parts: dict[tuple[str, str], dict[str, dict[float, float | None]]] = {}
    for (version, keyed), points in result.series.items():
        segment, _, part = keyed.partition("\x00")
        parts.setdefault((version, segment), {})[part] = dict(points)
    series: dict[tuple[str, str], tuple] = {}
    counts: dict[tuple[str, str], tuple] = {}
    for key, both in parts.items():
        numerators, denominators = both.get("numerator", {}), both.get("denominator", {})
        values, counted = [], []
        for t in sorted(denominators):
            num, den = numerators.get(t), denominators[t]
            if num is None or den is None or den <= 0 or num < 0 or num > den * 1.01 + 0.5:
                values.append((t, None))
                continue
            num = min(num, den)
            values.append((t, num / den))
            counted.append((t, num, den))
        series[key] = tuple(values)
        counts[key] = tuple(counted)
    return RangeResult(result.metric, result.promql, result.start, result.end, result.step, series=series,
                       counts=counts)


class PrometheusFeatures:
    """A :class:`~console.adapters.protocols.FeatureTelemetry` on the same Prometheus as the catalogue.

    The model servers report which feature binding they use (an info gauge, value 1) and a histogram of
    every input's values with bucket bounds at the training quantiles, plus a missing-values counter.
    """

    def __init__(self, metrics: PrometheusMetrics, binding_metric: str = "rewind_feature_binding_info",
                 value_metric: str = "rewind_feature_value", missing_metric: str = "rewind_feature_missing_total",
                 model_label: str = "model") -> None:
        self.metrics = metrics
        self.binding_metric = binding_metric
        self.value_metric = value_metric
        self.missing_metric = missing_metric
        self.model_label = model_label

    def _vector(self, promql: str, at: float) -> list[dict]:
        status, content = self.metrics._fetch(promql, at)
        data, error = self.metrics._answer_data(status, content)
        if error is not None:
            raise MetricsError(f"{self.metrics.describe()}: {error} (query {promql[:120]})")
        result = data.get("result")
        return result if isinstance(result, list) else []

    def _selector(self, metric: str, model: str) -> str:
        quoted = model.replace("\\", "\\\\").replace('"', '\\"')
        return f'{metric}{{{self.model_label}="{quoted}"}}'

    def bindings(self, model: str, lookback_s: float) -> list:
        """What each version's servers report consuming now, each with when it landed.

        ``since`` is when a binding was first seen, for one that replaced another binding of the same
        version and view within ``lookback_s``; ``None`` when it is the only one seen (it came before).
        """
        from console.domain.features import Binding

        at = time.time()
        version = self.metrics.version_label
        by = f"{version}, feature_service, feature_view, feature_version, udf_sha"
        selector = self._selector(self.binding_metric, model)
        now = self._vector(f"max by ({by}) ({selector})", at)
        span = max(60, int(lookback_s))
        first = self._vector(f"min by ({by}) (min_over_time(timestamp({selector})[{span}s:5s]))", at)

        def key(labels: dict) -> tuple:
            return tuple(labels.get(k, "") for k in (version, "feature_service", "feature_view",
                                                     "feature_version", "udf_sha"))

        since = {key(s.get("metric", {})): parse_sample_value(s.get("value", [0, "NaN"])[1]) for s in first}
        # A binding "landed" only when it replaced another of the same version and view within the lookback;
        # the first one a server ever reported (a fresh start) has no landing time to blame.
        per_view = Counter((k[0], k[2]) for k in since)
        replaced = {version_view for version_view, count in per_view.items() if count > 1}
        found = []
        for sample in now:
            labels = sample.get("metric", {})
            seen = since.get(key(labels)) if (key(labels)[0], key(labels)[2]) in replaced else None
            found.append(Binding(str(labels.get(version, "")), str(labels.get("feature_service", "")),
                                 str(labels.get("feature_view", "")), str(labels.get("feature_version", "")),
                                 str(labels.get("udf_sha", "")),
                                 None if seen is None or math.isnan(seen) else float(seen)))
        return sorted(found, key=lambda b: (b.version, b.view))

    def inputs(self, model: str, window: str) -> tuple[dict[tuple[str, str, str], list[tuple[float, float]]],
                                                       dict[tuple[str, str, str], float]]:
        """Per (version, segment, feature): each bucket's increase over ``window``, and the missing values."""
        at = time.time()
        version, segment = self.metrics.version_label, self.metrics.segment_label
        buckets = self._vector(
            f"sum by ({version}, {segment}, feature, le) "
            f"(increase({self._selector(self.value_metric + '_bucket', model)}[{window}]))", at)
        missed = self._selector(self.missing_metric, model)
        missing = self._vector(f"sum by ({version}, {segment}, feature) (increase({missed}[{window}]))", at)
        cumulative: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
        for sample in buckets:
            labels = sample.get("metric", {})
            key = (str(labels.get(version, "")), str(labels.get(segment, "")), str(labels.get("feature", "")))
            try:
                le = float(labels.get("le", "nan"))
            except ValueError:
                continue
            value = parse_sample_value(sample.get("value", [0, "NaN"])[1])
            cumulative.setdefault(key, []).append((le, value if value is not None else math.nan))
        absent: dict[tuple[str, str, str], float] = {}
        for sample in missing:
            labels = sample.get("metric", {})
            key = (str(labels.get(version, "")), str(labels.get(segment, "")), str(labels.get("feature", "")))
            value = parse_sample_value(sample.get("value", [0, "NaN"])[1])
            absent[key] = value if value is not None else math.nan
        return cumulative, absent
