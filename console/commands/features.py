"""``rewind features status|diff|rollback``: what each version consumes, and rolling the features back.

The plan comes from :mod:`console.services.features`; it is previewed, confirmed,
applied, verified and journaled by the one action procedure, as a rollback is
(``rewind undo ACTION_ID`` reverses it).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from console.commands.rollback import _carry_out, _placement, _recover, _require_confirmation_channel
from console.domain.feature_store import parse_version
from console.domain.features import Health
from console.domain.routing import RouterState

if TYPE_CHECKING:
    from console.config import LoadedConfig
    from console.services.features import FeatureCatalog, FeatureMap, FeatureReading


def _loaded(args: argparse.Namespace) -> tuple[LoadedConfig, str]:
    from console.config import load_config
    from console.wiring import for_model

    return for_model(load_config(getattr(args, "config", None)), args.model)


def run(args: argparse.Namespace) -> int:
    """``rewind features ...``."""
    loaded, model = _loaded(args)
    if args.features_command == "status":
        return _status(loaded, model, args)
    if args.features_command == "diff":
        return _diff(loaded, model, args)
    return _rollback(loaded, model, args)


def _status(loaded: LoadedConfig, model: str, args: argparse.Namespace) -> int:
    """Declared beside observed bindings, the findings, input health and the diagnosis; exit 1 on a finding."""
    from console.wiring import build_feature_catalog, build_status_service

    catalog = build_feature_catalog(loaded)
    status = build_status_service(loaded.config)
    try:
        feature_map = catalog.feature_map(model)
        snapshot = status.snapshot(model)
        reading = catalog.evidence.reading(snapshot)
    finally:
        status.close()
        if catalog.journal is not None:
            catalog.journal.close()
    if args.json:
        json.dump(_document(feature_map, reading), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        _print_status(Console(), feature_map, reading)
    problem = reading.diagnosis is not None or feature_map.findings or reading.abnormal
    return 1 if problem else 0


def _document(feature_map: FeatureMap, reading: FeatureReading) -> dict[str, object]:
    """The JSON document of ``rewind features status --json`` (schema ``rewind.features/1``)."""
    return {
        "schema": "rewind.features/1",
        "model": feature_map.model,
        "declared": [{"version": d.version, "feature_service": d.service, "problem": d.problem,
                      "views": [{"view": p.view, "pinned": p.version, "version": consumed.label if consumed else None,
                                 "udf_sha": consumed.udf_sha if consumed else None}
                                for p, consumed in d.projections]} for d in feature_map.declared],
        "observed": [b.__dict__ for b in feature_map.observed],
        "findings": list(feature_map.findings),
        "inputs": [{**i.__dict__, "health": i.health.value} for i in reading.inputs],
        "diagnosis": reading.diagnosis.to_dict() if reading.diagnosis else None,
        "problem": feature_map.problem or reading.problem,
    }


def _print_status(console: Console, feature_map: FeatureMap, reading: FeatureReading) -> None:
    table = Table(title=f"{feature_map.model}: features declared (registry → store) and observed (servers)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("ver", "service (tag)", "view", "declared", "observed", "landed"):
        table.add_column(column, overflow="fold")
    observed = {(b.version, b.view): b for b in feature_map.observed}
    for declared in feature_map.declared:
        if declared.service is None:
            table.add_row(f"v{declared.version}", "(no tag)", "-", "-", "-", "-")
            continue
        if not declared.projections:
            table.add_row(f"v{declared.version}", declared.service, "-", declared.problem or "-", "-", "-")
        for projection, consumed in declared.projections:
            seen = observed.get((declared.version, projection.view))
            # A pinned projection reads its version; "=" marks one that follows the view's active version.
            mark = "@" if projection.version is not None else "="
            wanted = f"{mark}{consumed.label} {consumed.udf_sha[:8]}" if consumed else "?"
            if seen is None:
                got = "not reported"
            else:
                got = f"{seen.view_version} {seen.udf_sha[:8]}"
                if seen.feature_service != declared.service:
                    got += f" via {seen.feature_service}"
            table.add_row(f"v{declared.version}", declared.service, projection.view, wanted, got,
                          _ago(seen.since) if seen and seen.since else "-")
    console.print(table)
    console.print(Text("declared: @ pinned version, = the view's active version; landed: when a server switched to it",
                       style="dim"))
    for finding in feature_map.findings:
        console.print(Text(f"! {finding}", style="yellow"))
    abnormal = reading.abnormal
    judged = [i for i in reading.inputs if i.health is not Health.NO_DATA]
    console.print(Text(f"inputs: {len(judged)} judged, {len(abnormal)} abnormal", style="red" if abnormal else "green"))
    for item in abnormal[:8]:
        console.print(Text(f"  ✗ v{item.version} {item.segment} {item.reason}", style="red"))
    if len(abnormal) > 8:
        console.print(Text(f"  … and {len(abnormal) - 8} more (--json lists them all)", style="dim"))
    from console.commands.status import render_diagnosis

    if reading.diagnosis is None:
        console.print(Text("Diagnosis: none (no version breaches)", style="green"))
    for line in render_diagnosis(reading.diagnosis, reading.problem):
        console.print(line)
    if feature_map.problem or reading.problem:
        console.print(Text(f"? {feature_map.problem or reading.problem}", style="yellow"))


def _ago(ts: float) -> str:
    import time

    seconds = max(0, int(time.time() - ts))
    return f"{seconds // 60}m{seconds % 60:02d}s ago" if seconds < 3600 else f"{seconds // 3600}h ago"


def _diff(loaded: LoadedConfig, model: str, args: argparse.Namespace) -> int:
    """The transformation diff between two versions of a view (default: what a rollback would go back to)."""
    from console.wiring import build_feature_catalog

    catalog = build_feature_catalog(loaded)
    try:
        lines = _diff_lines(catalog, model, args)
    finally:
        if catalog.journal is not None:
            catalog.journal.close()
    console = Console(highlight=False)
    for line in lines or ["(no difference in the transformation's source)"]:
        style = "green" if line.startswith("+") and not line.startswith("+++") else \
            "red" if line.startswith("-") and not line.startswith("---") else ""
        console.print(Text(line, style=style))
    return 0


def _diff_lines(catalog: FeatureCatalog, model: str, args: argparse.Namespace) -> list[str]:
    if args.old is not None and args.new is not None and args.view:
        lines = catalog.diff(args.view, parse_version(args.old), parse_version(args.new))
    else:
        from console.services.features import FeatureRollbacks
        from console.services.rollback import new_action_id

        plan = FeatureRollbacks(catalog, new_action_id).preview(
            model, to=parse_version(args.old) if args.old else None, view=args.view)
        lines = list(plan.diff)
    return lines


def _rollback(loaded: LoadedConfig, model: str, args: argparse.Namespace) -> int:
    """Preview, confirm, apply and verify a feature rollback (per model, or global with --global)."""
    from console.services.features import FeatureRollbacks, feature_signature
    from console.services.rollback import Preview, new_action_id
    from console.wiring import build_rollback_service, feature_catalog_of

    service = build_rollback_service(loaded)
    console = Console(stderr=args.json)
    try:
        _recover(service, console)
        planned = FeatureRollbacks(feature_catalog_of(service, loaded), new_action_id).preview(
            model, to=parse_version(args.to) if args.to else None, view=args.view, whole_view=args.whole_view,
            reason=args.reason or "")
        preview = Preview(planned.plan, f"back to {planned.view} {planned.target.label} from "
                                        f"{planned.current.label}", None, None, feature_signature(),
                          _empty_router(model),
                          planned.already, planned.details)
        _require_confirmation_channel(args, preview)
        summary = args.reason or (f"feature rollback of {model}: {planned.view} {planned.current.label} → "
                                  f"{planned.target.label}")
        return _carry_out(service, preview, _placement(service, args, model, summary), args, console,
                          "Feature rollback")
    finally:
        service.journal.close()


def _empty_router(model: str) -> RouterState:
    """A feature rollback does not touch the router: the preview shows none of it."""
    return RouterState(model, ())
