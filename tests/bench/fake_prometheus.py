"""A stand-in Prometheus that answers every query with a recorded response of the right shape.

An instant query gets one series per (version, segment); a ratio's counts query
(it names ``rewind_part``) two, its numerator and denominator; a range query one
series of four points per cell. Each response has Prometheus's exact shape,
so the console does all the work it would do against the real server while
this process (not the one measured) does the serving. ``GET /count`` tells how
many queries arrived.

Run as ``python -m tests.bench.fake_prometheus --port P --versions 20 --segments 200``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def recorded_response(versions: int, segments: int, seed: int = 7) -> bytes:
    """An instant-vector answer with ``versions x segments`` series."""
    rng = random.Random(seed)
    result = [
        {"metric": {"version": str(v), "segment": f"segment-{s:03d}"},
         "value": [1795321388.279, repr(rng.random())]}
        for v in range(1, versions + 1)
        for s in range(segments)
    ]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}},
                      separators=(",", ":")).encode()


def counts_share(promql: str) -> float:
    """The numerator's share a counts query gets: 95 % for the labels (accuracy), 1 % for the requests (errors).

    Told apart by the metric names: every counts query names ``label_replace``, so "label" alone is not enough.
    """
    return 0.95 if "rewind_label" in promql else 0.01


def recorded_counts(versions: int, segments: int, share: float, seed: int = 11) -> bytes:
    """A counts answer: a numerator and a denominator series per cell, told apart by ``rewind_part``.

    ``share``: the numerator's expected share of the denominator (1 % errors, 95 % correct labels).
    """
    rng = random.Random(seed)
    result = []
    for v in range(1, versions + 1):
        for s in range(segments):
            requests = rng.randint(20, 600)
            errors = sum(rng.random() < share for _ in range(requests))
            for part, value in (("numerator", errors), ("denominator", requests)):
                result.append({"metric": {"version": str(v), "segment": f"segment-{s:03d}", "rewind_part": part},
                               "value": [1795321388.279, repr(float(value))]})
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}},
                      separators=(",", ":")).encode()


def recorded_range(versions: int, segments: int, start: float, step: float, seed: int = 13) -> bytes:
    """A range answer: four evaluations ``step`` apart per cell from ``start``, as the query asked."""
    rng = random.Random(seed)
    result = [
        {"metric": {"version": str(v), "segment": f"segment-{s:03d}"},
         "values": [[round(start + step * i, 3), repr(rng.random())] for i in range(4)]}
        for v in range(1, versions + 1)
        for s in range(segments)
    ]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}},
                      separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--segments", type=int, default=200)
    args = parser.parse_args()
    body = recorded_response(args.versions, args.segments)
    # A ratio's counts: errors are 1 % of requests, correct labels 95 % of labels.
    counts_bodies = {share: recorded_counts(args.versions, args.segments, share) for share in (0.01, 0.95)}
    seen = {"queries": 0}

    def answer(path: str, query: dict[str, list[str]]) -> bytes:
        if path.startswith("/api/v1/query_range"):
            return recorded_range(args.versions, args.segments, float(query["start"][0]), float(query["step"][0]))
        if "rewind_part" not in path:
            return body
        return counts_bodies[counts_share(path)]

    serve(args.port, answer, seen)


def serve(port: int, answer: Callable[[str, dict[str, list[str]]], bytes], seen: dict[str, int],
          counted: Callable[[str], None] = lambda promql: None) -> None:
    """Answer Prometheus' query endpoints on loopback with ``answer(path, query)`` until killed.

    Every query counts in ``seen["queries"]`` (``counted`` sees its PromQL); ``/count`` returns ``seen``,
    ``/reset`` zeroes it. Prints ``ready`` once listening.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            return

        def _reply(self, payload: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):  # noqa: N802
            query = parse_qs(urlsplit(self.path).query)
            if self.path.startswith("/api/v1/query"):
                seen["queries"] += 1
                counted(query.get("query", [""])[0])
                self._reply(answer(self.path, query))
            elif self.path == "/count":
                self._reply(json.dumps(seen).encode())
            elif self.path == "/reset":
                seen.update(dict.fromkeys(seen, 0))
                self._reply(b"{}")
            else:
                self._reply(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
