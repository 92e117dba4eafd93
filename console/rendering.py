"""Rich renderables both faces show: the command line prints them, the console puts them on its dialogs."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from console.domain.rollback import ActionKind
from console.domain.routing import describe_mirror
from console.services.rollback import Preview


def render_feature_preview(preview: Preview, title: str) -> Group:
    """A feature rollback's plan: the tags or the view moved, the blast radius, the warning, the diff."""
    plan = preview.plan
    header = Text.assemble((title, "bold"), f"  {plan.model}: {plan.summary}", f"  ·  action {plan.action_id}")
    parts: list = [header]
    if plan.tag_moves:
        keys = sorted({m.key for m in plan.tag_moves})
        tags = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"Registry tag {', '.join(keys)}",
                     title_justify="left")
        for column in ("version", "now", "planned"):
            tags.add_column(column, overflow="fold")
        for move in plan.tag_moves:
            tags.add_row(f"v{move.version}", move.before or "-", move.after or "(removed)", style="bold")
        parts.append(tags)
    if plan.feature_service:
        parts.append(Text(f"creates feature service {plan.feature_service['name']} = "
                          f"{', '.join(plan.feature_service['features'])} (additive; nothing is removed)"))
    if plan.view_pin is not None:
        parts.append(Text.assemble(("Feature view  ", "bold"), f"{plan.view_pin.view}: active {plan.view_pin.before}",
                                   "  →  ", (plan.view_pin.after, "bold")))
    for line in preview.details:
        style = ("green" if line.startswith("+") and not line.startswith("+++")
                 else "red" if line.startswith("-") and not line.startswith("---")
                 else "yellow" if line.startswith("the next") else "")
        parts.append(Text(line, style=style))
    parts.append(Text(f"✓ model: {preview.signature.reason}", style="green"))
    return Group(*parts)


def render_preview(preview: Preview, title: str) -> Group:
    """The whole plan on one screen: weights, alias moves, both versions, signature check."""
    plan = preview.plan
    if plan.moves_features or (plan.kind is ActionKind.FEATURES_ROLLBACK):
        return render_feature_preview(preview, title)
    weights = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Router weights", title_justify="left")
    weights.add_column("version")
    weights.add_column("now", justify="right")
    for index in range(len(plan.steps)):
        weights.add_column("planned" if len(plan.steps) == 1 else f"step {index + 1}", justify="right")
    for version in sorted(plan.weights_before, key=lambda v: int(v) if v.isdigit() else 1 << 30):
        cells = [str(plan.weights_before[version])]
        for step in plan.steps:
            cells.append(str(step[version]))
        changed = plan.weights_after[version] != plan.weights_before[version]
        weights.add_row(f"v{version}", *cells, style="bold" if changed else "dim")

    aliases = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Registry aliases", title_justify="left")
    for column in ("alias", "now", "planned"):
        aliases.add_column(column)
    for move in plan.alias_moves:
        aliases.add_row(move.alias, f"v{move.before}" if move.before else "-",
                        f"v{move.after}" if move.after else "(removed)", style="bold")
    if not plan.alias_moves:
        aliases.add_row("(none)", "", "")

    versions = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="Versions", title_justify="left")
    for column in ("", "version", "created (UTC)", "run", "tags"):
        versions.add_column(column)
    roles = {ActionKind.SHADOW_START: ("champion", "shadow"), ActionKind.SHADOW_STOP: ("champion", "shadow"),
             ActionKind.PROMOTE: ("champion now", "promoted")}.get(plan.kind, ("leave", "go back to"))
    for role, info in zip(roles, (preview.leaving, preview.target), strict=True):
        if info is None:
            continue
        tags = ", ".join(f"{k}={v}" for k, v in sorted(info.tags.items())) or "-"
        versions.add_row(role, f"v{info.version}", f"{info.created_at:%Y-%m-%d %H:%M}" if info.created_at else "-",
                         (info.run_id or "-")[:12], tags)

    router_parts: list[Text] = []
    if plan.moves_mirror:
        router_parts.append(Text.assemble(("Router mirror  ", "bold"), f"now: {describe_mirror(plan.mirror_before)}",
                                          "  →  planned: ", (describe_mirror(plan.mirror_after), "bold")))
    for server in plan.moved_servers:
        router_parts.append(Text.assemble(("Router server  ", "bold"),
                                          f"{server}: {plan.servers_before.get(server, 'ready')} → ",
                                          (plan.servers_after[server], "bold")))
    router_parts += [Text(f"⚠ {line}", style="yellow") for line in preview.warnings]
    signature = Text(("✓ " if preview.signature.compatible else "✗ ") + f"signatures: {preview.signature.reason}",
                     style="green" if preview.signature.compatible else "bold red")
    traffic = plan.kind in (ActionKind.ROLLBACK, ActionKind.UNDO, ActionKind.PROMOTE)
    moves = f"v{plan.leave} → v{plan.target}" if traffic else plan.summary
    header = Text.assemble((title, "bold"), f"  {plan.model}: {moves} ({preview.why_target})",
                           f"  ·  {plan.mode.value}", f"  ·  action {plan.action_id}")
    return Group(header, weights, *router_parts, aliases, versions, signature)
