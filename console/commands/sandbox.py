"""``rewind sandbox up|down|status|scenario``: drive the local sandbox."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from console.paths import default_sandbox_dir


def sandbox_for(args: argparse.Namespace):
    """The sandbox named by ``--dir``, else the default one."""
    from console.sandbox.manager import Sandbox

    return Sandbox(Path(args.dir) if getattr(args, "dir", None) else default_sandbox_dir())


def run(args: argparse.Namespace) -> int:
    """Dispatch one sandbox action."""
    sandbox = sandbox_for(args)
    action = args.sandbox_command
    if action == "up":
        sandbox.up(rate=args.rate, say=lambda line: print(line, file=sys.stderr, flush=True),
                   models=getattr(args, "models", None))
        print(sandbox.config_path)
        return 0
    if action == "down":
        stopped = sandbox.down(purge=args.purge)
        print(f"sandbox: stopped {', '.join(stopped) if stopped else 'nothing (it was not running)'}"
              + (f"; deleted {sandbox.dir}" if args.purge else ""))
        return 0
    if action == "scenario":
        scenario = sandbox.set_scenario(args.name, args.version)
        target = f" on v{scenario['target_version']}" if scenario.get("target_version") else ""
        where = f" in {', '.join(scenario['segments'])}" if scenario.get("segments") else ""
        print(f"sandbox: scenario {scenario['name']}{target}{where}")
        return 0
    doc = sandbox.status()
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_status(doc))
    return 0 if doc["running"] else 1


def render_status(doc: dict) -> str:
    """The sandbox status as a few readable lines."""
    if not doc.get("processes"):
        return f"sandbox: not running ({doc['dir']})"
    lines = [
        f"sandbox: {'running' if doc['running'] else 'DEGRADED: some processes have exited'} in {doc['dir']}",
        f"  model     {doc['model']}  versions {', '.join('v' + v for v in doc['versions'])}",
        f"  aliases   {', '.join(f'{a} → v{v}' for a, v in sorted((doc.get('aliases') or {}).items())) or '-'}",
        f"  weights   {', '.join(f'v{v}: {w}' for v, w in sorted((doc.get('weights') or {}).items())) or '-'}",
        *(f"  model     {name}  versions {', '.join('v' + v for v in entry['versions'])}  aliases "
          f"{', '.join(f'{a} → v{v}' for a, v in sorted((entry.get('aliases') or {}).items())) or '-'}  weights "
          f"{', '.join(f'v{v}: {w}' for v, w in sorted((entry.get('weights') or {}).items())) or '-'}"
          for name, entry in (doc.get("fleet") or {}).items()),
        f"  scenario  {(doc.get('scenario') or {}).get('name', 'healthy')}"
        + ("  (on the first model)" if doc.get("fleet") else ""),
        f"  config    {doc['config']}",
    ]
    for name, url in doc["endpoints"].items():
        if isinstance(url, dict):
            url = ", ".join(f"v{v} {u}" for v, u in url.items())
        lines.append(f"  {name:<20} {url}")
    for process in doc["processes"]:
        lines.append(f"  pid {process['pid']:<8} {process['name']:<12} {'alive' if process['alive'] else 'EXITED'}")
    lines.extend(f"  ! {error}" for error in doc.get("errors", []))
    return "\n".join(lines)
