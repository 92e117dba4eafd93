"""Real systems behind small protocols: registry (MLflow), router (HAProxy), metrics (Prometheus).

Only this package talks to the outside world. Client libraries are imported
inside the adapter that needs them, lazily where they are heavy (mlflow).
"""

import sys

# httpx's package imports its own command-line tool (``httpx._main``: click, rich's console,
# pygments' lexers) whenever those libraries are installed, as they are beside mlflow and
# textual: about 70 ms on the start of every command that reads MLflow's REST API,
# Alertmanager or Kubernetes, for a tool Rewind never runs. Marked absent before any adapter
# imports httpx, it is not loaded, and httpx falls back to its stub (its own ``except
# ImportError``). ``setdefault``: a process that loaded it already keeps it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
