"""A stand-in Prometheus for a fleet: every answer holds models x versions x segments series, labelled by model.

Like :mod:`tests.bench.fake_prometheus` (recorded answers of Prometheus' exact shape, served by another
process), but each series carries the ``model`` label a fleet query groups by, and ``GET /count`` also
tells how many distinct models the queries named, so a benchmark can check that one query asked for all.

Run as ``python -m tests.bench.fleet_prometheus --port P --models 50 --versions 3 --segments 20``.
"""

from __future__ import annotations

import argparse
import json
import random

from tests.bench.fake_prometheus import counts_share, serve


def model_names(models: int) -> list[str]:
    """The fleet's model names: ``fraud-00`` ... (the benchmark's config lists the same)."""
    return [f"fraud-{m:02d}" for m in range(models)]


def _cells(models: int, versions: int, segments: int):
    for model in model_names(models):
        for v in range(1, versions + 1):
            for s in range(segments):
                yield {"model": model, "version": str(v), "segment": f"segment-{s:02d}"}


def _answer(result_type: str, result: list) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}},
                      separators=(",", ":")).encode()


def instant(models: int, versions: int, segments: int, at: float, seed: int = 7) -> bytes:
    """An instant vector: one series per (model, version, segment)."""
    rng = random.Random(seed)
    return _answer("vector", [{"metric": cell, "value": [at, repr(rng.random())]}
                              for cell in _cells(models, versions, segments)])


def counts(models: int, versions: int, segments: int, at: float, share: float, seed: int = 11) -> bytes:
    """A ratio's counts: a numerator and a denominator series per cell, told apart by ``rewind_part``."""
    rng = random.Random(seed)
    result = []
    for cell in _cells(models, versions, segments):
        requests = rng.randint(20, 600)
        hits = sum(rng.random() < share for _ in range(requests))
        for part, value in (("numerator", hits), ("denominator", requests)):
            result.append({"metric": {**cell, "rewind_part": part}, "value": [at, repr(float(value))]})
    return _answer("vector", result)


def ranged(models: int, versions: int, segments: int, start: float, step: float, seed: int = 13) -> bytes:
    """A range answer: four evaluations ``step`` apart per cell from ``start``."""
    rng = random.Random(seed)
    return _answer("matrix", [{"metric": cell, "values": [[round(start + step * i, 3), repr(rng.random())]
                                                           for i in range(4)]}
                              for cell in _cells(models, versions, segments)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--segments", type=int, default=20)
    args = parser.parse_args()
    shape = (args.models, args.versions, args.segments)
    value_body = instant(*shape, 1795321388.279)
    counts_bodies = {share: counts(*shape, 1795321388.279, share) for share in (0.01, 0.95)}
    seen = {"queries": 0, "queries_naming_one_model": 0}

    def answer(path: str, query: dict[str, list[str]]) -> bytes:
        if path.startswith("/api/v1/query_range"):
            return ranged(*shape, float(query["start"][0]), float(query["step"][0]))
        promql = query.get("query", [""])[0]
        if "rewind_part" not in promql:
            return value_body
        return counts_bodies[counts_share(promql)]

    def counted(promql: str) -> None:
        if 'model="' in promql:
            seen["queries_naming_one_model"] += 1

    serve(args.port, answer, seen, counted)


if __name__ == "__main__":
    main()
