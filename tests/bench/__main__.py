"""Run the benchmark modules and report their figures (see the package docstring)."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

import tests.bench as package


def main(argv: list[str]) -> int:
    """Run the benchmark modules named in ``argv`` (default: all of them)."""
    if "--quick" in argv:  # a shortened smoke run of the modules that know the knob (bench_shadow, bench_fallback)
        os.environ["REWIND_BENCH_QUICK"] = "1"
    wanted = set(argv) - {"--quick"}
    names = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name != "fake_prometheus"]
    # By default the bench_* modules; a module named on the command line (judge_soak) runs alone.
    def chosen(name: str) -> bool:
        return name in wanted or name.removeprefix("bench_") in wanted if wanted else name.startswith("bench_")

    modules = sorted(name for name in names if chosen(name))
    results = []
    for name in modules:
        # Each module starts from a quiet disk: the journal module leaves hundreds of MB of
        # dirty pages whose write-back would otherwise slow the next module's fsyncs.
        os.sync()
        module = importlib.import_module(f"tests.bench.{name}")
        # A figure may carry a fourth element: a dict of extra fields for its JSON record (min, splits).
        for figure, value, unit, *extra in module.figures():
            print(f"{figure} {value:g} {unit}", flush=True)
            record = {"name": figure, "value": value, "unit": unit, "module": name}
            results.append(record | {k: v for k, v in (extra[0] if extra else {}).items() if k not in record})
    out = os.environ.get("BENCH_OUT")
    if out:
        document = {"schema": "rewind.bench/1", "measured_at": time.time(), "figures": results}
        Path(out).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
