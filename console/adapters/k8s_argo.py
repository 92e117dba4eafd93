"""Argo Rollouts abort over the Kubernetes API (httpx), behind the router protocol.

One Rollout (argoproj.io/v1alpha1) per model (``router.backends``: model -> ``namespace/name``). While a
canary is in progress the Rollout has two ReplicaSets, named ``{rollout}-{pod-template-hash}``: the stable
one (``status.stableRS``) and the canary (``status.currentPodHash``). Their traffic weights are what the
controller last gave the traffic router (``status.canary.weights``), or, for a canary without traffic
routing, the step's ``setWeight`` (0 once aborted).

**Which model version a ReplicaSet runs.** Read from a label of its pod template
(``router.argo_rollouts.version_label``, ``rewind.dev/model-version`` by default), which the team sets in the
Rollout's ``spec.template.metadata.labels`` with each new model; a ReplicaSet's template never changes (its
name is the template's hash), so the stable one keeps its version after the Rollout's template moved on.
Reading it needs read access to ``replicasets.apps``. A ReplicaSet without the label is refused.

**The one write: abort.** Rolling back a canary in progress is what ``kubectl argo rollouts abort`` does:
``status.abort: true`` written through the ``status`` subresource (the plugin's merge patch
``{"status":{"abort":true}}``, falling back to the main resource where a cluster has no status
subresource). Rewind sends the same field as a JSON Patch on the same subresource, with ``test`` s of
``status.currentPodHash`` and ``status.stableRS`` as read, so an abort never lands on a canary other than
the one the responder saw (a failed test is 422: the state moved, re-plan). Any other weight change (a
partial step, or giving the canary traffic back) is refused: the Rollout's own steps do that
(``kubectl argo rollouts retry`` / ``promote``).

**Read-back.** The abort changes no spec, so no generation: the write is taken once the controller has
reconciled it: ``status.observedGeneration`` (a string) at ``metadata.generation``, ``status.abortedAt``
set, and ``status.phase`` ``Degraded`` (its ``RolloutAborted`` condition). The weights are then returned as
the controller records them, even if the canary's is not yet 0 (dynamicStableScale moves it as the stable
ReplicaSet scales back up).

**Verification.** argo-rollouts#4841 (v1.9.0): an abort with ``dynamicStableScale`` and
``minPodsPerReplicaSet`` left the canary's traffic weight above 0 indefinitely; traffic routers have also
kept a canary's weight the Rollout no longer asks for. So the rollback is verified from the per-version
metrics (``router.argo_rollouts.served_query``), never from the Rollout's spec or status alone.
"""

from __future__ import annotations

import time
from typing import Any

from console.adapters.k8s_api import JSON_PATCH, LabelledKubeRouter
from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.domain.routing import RouterState, ServerState

GROUP = "argoproj.io"
API_VERSION = "v1alpha1"
SETTING = "router.argo_rollouts"


def rollout_path(namespace: str, name: str) -> str:
    """The API path of one Rollout."""
    return f"/apis/{GROUP}/{API_VERSION}/namespaces/{namespace}/rollouts/{name}"


def replicaset_path(namespace: str, name: str) -> str:
    """The API path of one ReplicaSet."""
    return f"/apis/apps/v1/namespaces/{namespace}/replicasets/{name}"


def step_weight(rollout: dict[str, Any]) -> int:
    """The canary's weight from the steps (no traffic routing): 0 when aborted, else the last ``setWeight``
    at or before ``status.currentStepIndex`` (100 past the last step), as the controller computes it."""
    status = rollout.get("status") or {}
    if status.get("abort"):
        return 0
    steps = ((((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get("steps")) or []
    index = int(status.get("currentStepIndex") or 0)
    if index >= len(steps):
        return 100
    for step in reversed(steps[:index + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def aborted(rollout: dict[str, Any]) -> tuple[bool, str]:
    """Whether the controller has reconciled an abort of the current generation, and what it reads if not."""
    status = rollout.get("status") or {}
    generation = str((rollout.get("metadata") or {}).get("generation") or "")
    observed = str(status.get("observedGeneration") or "")
    if not status.get("abort"):
        return False, "status.abort is not set (someone retried or promoted the rollout?)"
    if observed != generation:
        return False, f"status.observedGeneration is {observed or 'unset'} (generation {generation})"
    if not status.get("abortedAt"):
        return False, "status.abortedAt is not set yet"
    if status.get("phase") != "Degraded":
        return False, f"status.phase is {status.get('phase')!r}, not 'Degraded'"
    return True, str(status.get("message") or "")


class ArgoRolloutsRouter(LabelledKubeRouter):
    """A model router on Argo Rollouts: one Rollout per model; a rollback of a canary is its abort.

    Args: as :class:`~console.adapters.k8s_api.KubeRouter`'s,
    ``objects`` maps each model to its Rollout;
    ``version_label`` is the pod-template label that carries the model version, and ``readback_timeout_s``
    how long an abort waits for the controller to reconcile it.
    """

    product, setting, kind = "Argo Rollouts", SETTING, "Rollout"
    mirrors_on, one_object = "Argo Rollouts", "a Rollout"

    def get_rollout(self, model: str) -> dict[str, Any]:
        """The model's Rollout as the API server has it."""
        namespace, name = self.object_name(model)
        return self._kube.get_object(rollout_path(namespace, name), f"Rollout {namespace}/{name}",
                                     f" (router.backends.{model})")

    def replicaset_version(self, namespace: str, replicaset: str) -> str:
        """The model version a ReplicaSet runs, from its pod template's ``version_label``."""
        return self.labelled_version(
            replicaset_path(namespace, replicaset), f"ReplicaSet {namespace}/{replicaset}",
            lambda replicaset: (((replicaset.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                "labels"),
            " in its pod template: set it to the model version in the Rollout's spec.template.metadata.labels")

    def _state(self, model: str, rollout: dict[str, Any]) -> tuple[RouterState, str | None, str | None]:
        """The state, and the canary's and the stable ReplicaSet's versions (canary ``None``: no canary)."""
        namespace, name = self.object_name(model)
        status = rollout.get("status") or {}
        stable_hash, canary_hash = str(status.get("stableRS") or ""), str(status.get("currentPodHash") or "")
        if not stable_hash:
            raise RouterError(f"{self.describe()}: Rollout {namespace}/{name} has no stable ReplicaSet yet "
                              "(status.stableRS)")
        stable = self.replicaset_version(namespace, f"{name}-{stable_hash}")
        if not canary_hash or canary_hash == stable_hash:
            server = ServerState(f"{name}-{stable_hash}", stable, 100, True, address=f"stable {stable_hash}")
            return RouterState(f"{namespace}/{name}", (server,)), None, stable
        canary = self.replicaset_version(namespace, f"{name}-{canary_hash}")
        if canary == stable:
            raise RouterError(f"{self.describe()}: the canary and the stable ReplicaSet of Rollout {namespace}/{name} "
                              f"both carry {self.version_label}={stable}; Rewind will not guess which is which")
        weights = (status.get("canary") or {}).get("weights") or {}
        if weights:
            recorded = {str((weights.get(side) or {}).get("podTemplateHash") or ""): int(
                (weights.get(side) or {}).get("weight") or 0) for side in ("canary", "stable")}
            canary_weight, stable_weight = recorded.get(canary_hash, 0), recorded.get(stable_hash, 0)
        else:
            canary_weight = step_weight(rollout)
            stable_weight = 100 - canary_weight
        servers = sorted([ServerState(f"{name}-{stable_hash}", stable, stable_weight, True, address="stable"),
                          ServerState(f"{name}-{canary_hash}", canary, canary_weight, True, address="canary")],
                         key=lambda s: int(s.version or 0))
        return RouterState(f"{namespace}/{name}", tuple(servers)), canary, stable

    def read_state(self, model: str) -> RouterState:
        """The stable and the canary ReplicaSet, as their model versions, with the weights the controller set."""
        return self._state(model, self.get_rollout(model))[0]

    # -- the write: abort -------------------------------------------------------------------
    @staticmethod
    def abort_patch(rollout: dict[str, Any]) -> list[dict[str, Any]]:
        """The JSON Patch (for the status subresource) that aborts the canary the Rollout's status names."""
        status = rollout.get("status") or {}
        return [{"op": "test", "path": "/status/currentPodHash", "value": status.get("currentPodHash")},
                {"op": "test", "path": "/status/stableRS", "value": status.get("stableRS")},
                {"op": "add", "path": "/status/abort", "value": True}]

    def set_weights(
        self, model: str, weights: dict[str, int], expected: dict[str, int] | None = None, checked: bool = False
    ) -> RouterState:
        """Abort the canary: its weight to 0 (the stable version takes the rest), as one compare-and-set write.

        Args:
            model: the model whose Rollout to abort.
            weights: the canary's version -> 0, and optionally the stable's -> 100 (what an abort gives).
            expected: version -> the weight the caller last saw; any difference aborts before writing.
            checked: the caller compared ``expected`` under its lock just before (the patch's tests guard the gap).

        Returns:
            The state read back once the controller reconciled the abort (weights as it records them).

        Raises:
            RouterError: any other change of weights (Argo Rollouts moves weights by its steps), a refusal, or
                an abort not reconciled within ``readback_timeout_s``.
            ConflictError: the weights or the canary changed (before the write, or under it: HTTP 409/422).
        """
        if checked and (expected is None or set(weights) - set(expected)):
            raise UsageError("set_weights(checked=True) needs an expected weight for every version it sets")
        namespace, name = self.object_name(model)
        rollout = self.get_rollout(model)
        state, canary, stable = self._state(model, rollout)
        if not weights:
            return state
        current = state.weights()
        if expected is not None:
            changed = {v: (w, current.get(v)) for v, w in expected.items() if current.get(v) != w}
            if changed:
                detail = ", ".join(f"v{v} is {now} (expected {was})" for v, (was, now) in sorted(changed.items()))
                raise ConflictError(f"{self.describe()}: weights changed since they were read: {detail}")
        abort = canary is not None and weights.get(canary) == 0 and set(weights) <= {canary, stable} \
            and weights.get(stable, 100) == 100
        if not abort:
            asked = ", ".join(f"v{v} to {w}" for v, w in sorted(weights.items()))
            now = (f"v{canary} is the canary and v{stable} the stable version" if canary
                   else f"no canary is in progress (v{stable} is stable)")
            raise RouterError(f"{self.describe()}: Rollout {namespace}/{name}: Rewind only aborts a canary (its "
                              f"weight to 0 at once, the stable version 100); asked {asked}, and {now}. Other "
                              "weights follow the Rollout's steps (kubectl argo rollouts retry/promote)")
        if (rollout.get("status") or {}).get("abort") and aborted(rollout)[0]:
            return state  # already aborted: nothing to write
        patch = self.abort_patch(rollout)
        what = f"Rollout {namespace}/{name}"
        try:
            written = self._kube.patch(f"{rollout_path(namespace, name)}/status", patch, what, JSON_PATCH)
        except NotFoundError:
            # As the kubectl plugin does: a cluster whose Rollout CRD has no status subresource takes it here.
            written = self._kube.patch(rollout_path(namespace, name), patch, what, JSON_PATCH)
        return self._read_back(model, written)

    def _read_back(self, model: str, written: dict[str, Any]) -> RouterState:
        """Poll until the controller reconciled the abort; the state then."""
        namespace, name = self.object_name(model)
        deadline = time.monotonic() + self.readback_timeout_s
        rollout = written
        while True:
            done, why = aborted(rollout)
            if done:
                return self._state(model, rollout)[0]
            if not (rollout.get("status") or {}).get("abort"):
                raise RouterError(f"{self.describe()}: Rollout {namespace}/{name}: {why}; the abort did not hold")
            if time.monotonic() >= deadline:
                raise RouterError(f"{self.describe()}: Rollout {namespace}/{name}: status.abort is set but the "
                                  f"controller has not reconciled it within {self.readback_timeout_s:g}s "
                                  f"({SETTING}.readback_timeout_s): {why}")
            self.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))
            rollout = self.get_rollout(model)
