"""``rewind journal verify``: check every incident's hash chain and name the first bad event."""

from __future__ import annotations

import argparse
import json
import sys

from console.services.journal import JournalService


def journal_service(args: argparse.Namespace) -> JournalService:
    """The journal named by the config's ``journal`` section (the default XDG journal without a config)."""
    from console.config import load_journal_settings
    from console.wiring import build_journal_service

    return build_journal_service(load_journal_settings(getattr(args, "config", None)))


def run(args: argparse.Namespace) -> int:
    """Verify the chains; exit 1 when any incident's chain is broken."""
    service = journal_service(args)
    try:
        results = service.verify(args.incident)
        broken = [r for r in results if not r.ok]
        if args.json:
            document = {
                "schema": "rewind.verify/1",
                "journal": service.describe(),
                "ok": not broken,
                "incidents": [
                    {"id": r.incident_id, "events": r.events, "head_hash": r.head_hash, "ok": r.ok,
                     "problem": None if r.problem is None else {
                         "seq": r.problem.seq, "tamper": str(r.problem.tamper), "detail": r.problem.detail,
                         "message": r.problem.message()}}
                    for r in results
                ],
            }
            json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            for result in results:
                if result.ok:
                    print(f"✓ {result.incident_id}: {result.events} events, head {result.head_hash[:16]}")
                else:
                    print(f"✗ {result.problem.message()}")  # type: ignore[union-attr]
            print(f"{len(results)} incident(s) verified in the {service.describe()}: "
                  + (f"{len(broken)} broken" if broken else "all intact"))
        if broken:
            first = broken[0].problem
            print(f"rewind: journal verify failed: {first.message()}"  # type: ignore[union-attr]
                  + (f" (and {len(broken) - 1} more broken incident(s))" if len(broken) > 1 else ""),
                  file=sys.stderr)
            return 1
        return 0
    finally:
        service.close()
