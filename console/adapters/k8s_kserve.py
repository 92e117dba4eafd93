"""KServe ``canaryTrafficPercent`` over the Kubernetes API (httpx), behind the router protocol.

One InferenceService (serving.kserve.io/v1beta1, serverless mode) per model (``router.backends``: model ->
``namespace/name``). KServe splits a predictor's traffic between two Knative revisions only: the latest one
(``status.components.predictor.latestCreatedRevision``: the current ``spec.predictor``) gets
``spec.predictor.canaryTrafficPercent`` and the last one rolled out at 100 % (``latestRolledoutRevision``)
the rest. So, as KServe's docs (docs/samples/v1beta1/rollout) and its ksvc reconciler have it:

- rolling back a canary is ``canaryTrafficPercent: 0`` (the latest revision stays, with no traffic);
- promoting it is removing ``canaryTrafficPercent`` (100 % to the latest, which becomes the rolled-out one);
- any other split is ``canaryTrafficPercent: N`` (the latest gets N %, the rolled-out one 100 - N);
- after a promotion the latest revision *is* the rolled-out one; ``canaryTrafficPercent`` below 100 then
  sends the rest back to ``previousRolledoutRevision`` (PropagateStatus moves ``latestRolledoutRevision``
  back to it), so a promoted model can be rolled back too. Rewind shows that revision at 0 % until then.

Traffic is read from ``status.components.predictor.traffic[]`` (``revisionName`` and ``percent``): what the
controller routes, not what the spec asks.

**Which model version a revision serves.** Neither the InferenceService nor its status names it. Rewind reads
it from a label on the Knative Revision (``router.kserve.version_label``, ``rewind.dev/model-version`` by
default), which the team sets in ``spec.predictor.labels`` with each new model: KServe copies the predictor's
labels into the Knative Service's revision template, and Knative copies those onto each Revision, which is
immutable. So the mapping survives later edits of the InferenceService (the rolled-out revision's model is
no longer in its spec), and needs read access to ``revisions.serving.knative.dev`` besides the
InferenceService. A revision without the label is refused, never guessed.

**Compare-and-set.** One JSON Patch: a ``test`` of the whole ``spec.predictor`` as read (the model and the
current percent), ``test`` s of the two revisions the split was computed on, then the ``add`` (or ``remove``)
of ``canaryTrafficPercent``. A concurrent edit, or a new revision rolled out meanwhile, fails the patch on
the server (422; 409 for an optimistic-lock failure): the state moved, re-plan.

**Read-back.** KServe copies the Knative Service's ``observedGeneration`` into the InferenceService's status
(inference_service_status.go, PropagateStatus), which can trail ``metadata.generation`` for good (an edit of
the transformer bumps only the InferenceService's). So the write is taken once the status has observed a
generation after the write (it reached ``metadata.generation``, or moved past the one read before the write)
and the traffic status shows the new percentages on the same revisions.

Weights set to 0 that kept serving are the reason the rollback is verified from the per-version metrics
(``router.kserve.served_query``), never from this object.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from console.adapters.k8s_api import JSON_PATCH, LabelledKubeRouter, other_writers
from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.domain.routing import RouterState, ServerState

GROUP = "serving.kserve.io"
API_VERSION = "v1beta1"
SETTING = "router.kserve"


def isvc_path(namespace: str, name: str) -> str:
    """The API path of one InferenceService."""
    return f"/apis/{GROUP}/{API_VERSION}/namespaces/{namespace}/inferenceservices/{name}"


def revision_path(namespace: str, name: str) -> str:
    """The API path of one Knative Revision."""
    return f"/apis/serving.knative.dev/v1/namespaces/{namespace}/revisions/{name}"


@dataclass(frozen=True)
class Split:
    """A predictor's traffic as KServe reports it.

    Attributes:
        latest: ``latestCreatedRevision`` (the current predictor: the canary while a split is on).
        rolled_out: ``latestRolledoutRevision`` (the last one at 100 %; ``""`` before the first).
        previous: ``previousRolledoutRevision`` (the one rolled out before it; ``""``: none).
        percent: revision -> percent of traffic, from ``status.components.predictor.traffic``.
        canary_percent: ``spec.predictor.canaryTrafficPercent`` (``None``: not set).
        observed: ``status.observedGeneration``; generation: ``metadata.generation``.
    """

    @property
    def other(self) -> str:
        """The revision that takes what the latest does not: the rolled-out one, or after a promotion (the
        latest is the rolled-out one) the one rolled out before it; ``""``: none."""
        return self.rolled_out if self.rolled_out != self.latest else self.previous

    latest: str
    rolled_out: str
    previous: str
    percent: dict[str, int]
    canary_percent: int | None
    observed: int
    generation: int


def read_split(isvc: dict[str, Any]) -> Split:
    """The traffic split of an InferenceService's predictor (status) and its ``canaryTrafficPercent`` (spec)."""
    status = isvc.get("status") or {}
    component = (status.get("components") or {}).get("predictor") or {}
    percent: dict[str, int] = {}
    for target in component.get("traffic") or []:
        name = target.get("revisionName")
        if name and target.get("percent") is not None:
            percent[str(name)] = percent.get(str(name), 0) + int(target["percent"])
    canary = ((isvc.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
    revision = {key: str(component.get(key) or "")
                for key in ("latestCreatedRevision", "latestRolledoutRevision", "previousRolledoutRevision")}
    return Split(revision["latestCreatedRevision"], revision["latestRolledoutRevision"],
                 revision["previousRolledoutRevision"], percent, None if canary is None else int(canary),
                 int(status.get("observedGeneration") or 0), int((isvc.get("metadata") or {}).get("generation") or 0))


class KServeRouter(LabelledKubeRouter):
    """A model router on KServe InferenceServices: the canary's traffic percent, one service per model.

    Args: as :class:`~console.adapters.k8s_api.KubeRouter`'s,
    ``objects`` maps each model to its InferenceService;
    ``version_label`` is the Revision label that carries the model version (from ``spec.predictor.labels``),
    and ``readback_timeout_s`` how long a write waits for the status to show the new split.
    """

    product, setting, kind = "KServe", SETTING, "InferenceService"
    mirrors_on, one_object = "KServe", "an InferenceService"

    def get_isvc(self, model: str) -> dict[str, Any]:
        """The model's InferenceService as the API server has it."""
        namespace, name = self.object_name(model)
        return self._kube.get_object(isvc_path(namespace, name), f"InferenceService {namespace}/{name}",
                                     f" (router.backends.{model})")

    def revision_version(self, namespace: str, revision: str) -> str:
        """The model version a Knative Revision serves, from its ``version_label``.

        Raises:
            RouterError: the revision has no such label (or it is not a version number).
        """
        return self.labelled_version(
            revision_path(namespace, revision), f"Knative Revision {namespace}/{revision}",
            lambda revision: (revision.get("metadata") or {}).get("labels"),
            ": set it to the model version in the InferenceService's spec.predictor.labels; Rewind will not guess "
            "which model a revision serves")

    def _servers(self, model: str, isvc: dict[str, Any]) -> tuple[Split, dict[str, str], RouterState]:
        """The split, revision -> version, and the state (one server per revision in the traffic)."""
        namespace, name = self.object_name(model)
        split = read_split(isvc)
        if not split.percent or not split.latest:
            raise RouterError(f"{self.describe()}: InferenceService {namespace}/{name} reports no predictor traffic "
                              "yet (status.components.predictor.traffic): is it in serverless mode and ready?")
        revisions = sorted(set(split.percent) | {r for r in (split.latest, split.rolled_out, split.other) if r})
        versions = {revision: self.revision_version(namespace, revision) for revision in revisions}
        seen: dict[str, str] = {}
        for revision in sorted(split.percent):
            version = versions[revision]
            if version in seen:
                raise RouterError(f"{self.describe()}: revisions {seen[version]} and {revision} of "
                                  f"InferenceService {namespace}/{name} both carry {self.version_label}={version}; "
                                  "Rewind will not guess which one is the version")
            seen[version] = revision
        servers = tuple(
            ServerState(server=revision, version=versions[revision], weight=split.percent.get(revision, 0),
                        operational=True, address=revision)
            for revision in sorted(revisions, key=lambda r: int(versions[r]))
            if revision in split.percent or revision == split.other)
        writers = other_writers(isvc, ("spec", "predictor", "canaryTrafficPercent"))
        return split, versions, RouterState(backend=f"{namespace}/{name}", servers=servers, also_written_by=writers)

    def read_state(self, model: str) -> RouterState:
        """Every revision in the predictor's traffic, as its model version, with its percent (the status).

        A revision whose ``Ready`` condition is ``False`` (its container fails, its image cannot be pulled) is
        not operational: traffic sent there fails, and a rollback to it is refused at the preview. Scaled to
        zero is still ``Ready``. Revisions the account may not read leave their state as the traffic says.
        """
        state = self._servers(model, self.get_isvc(model))[2]
        namespace, _ = self.object_name(model)
        servers = []
        for server in state.servers:
            revision = self._kube.get_readable(revision_path(namespace, server.server),
                                               f"Knative Revision {namespace}/{server.server}")
            conditions = ((revision or {}).get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)
            servers.append(replace(server, operational=False) if ready and ready.get("status") == "False" else server)
        return replace(state, servers=tuple(servers))

    # -- writes -----------------------------------------------------------------------------
    def percent_patch(self, isvc: dict[str, Any], split: Split, canary_percent: int) -> list[dict[str, Any]]:
        """The JSON Patch giving the latest revision ``canary_percent``: tests of the predictor and of the two
        revisions as read, then the ``add`` of ``canaryTrafficPercent`` (its ``remove`` at 100: a promotion)."""
        base = "/status/components/predictor"
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/spec/predictor", "value": (isvc.get("spec") or {}).get("predictor")},
            {"op": "test", "path": f"{base}/latestCreatedRevision", "value": split.latest},
            {"op": "test", "path": f"{base}/latestRolledoutRevision", "value": split.rolled_out},
        ]
        if canary_percent == 100:
            if split.canary_percent is not None:
                ops.append({"op": "remove", "path": "/spec/predictor/canaryTrafficPercent"})
        else:
            ops.append({"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": canary_percent})
        return ops

    def set_weights(
        self, model: str, weights: dict[str, int], expected: dict[str, int] | None = None, checked: bool = False
    ) -> RouterState:
        """Move the split between the rolled-out revision and the latest, as one compare-and-set patch.

        Args:
            model: the model whose InferenceService to change.
            weights: version -> percent; the two versions' percentages must make 100.
            expected: version -> the percent the caller last saw; any difference aborts before writing.
            checked: the caller compared ``expected`` under its lock just before (the patch's tests guard the gap).

        Returns:
            The state read back once the status shows the new split.

        Raises:
            ConflictError: the split or the revisions changed (before the write, or under it: HTTP 409/422).
            NotFoundError: a version KServe is not splitting between. UsageError: percentages that do not
                make 100. RouterError: refused, unreachable, or not shown within ``readback_timeout_s``.
        """
        for version, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise UsageError(f"version {version}: {weight!r} is not a percent from 0 to 100 (KServe's "
                                 "canaryTrafficPercent)")
        if checked and (expected is None or set(weights) - set(expected)):
            raise UsageError("set_weights(checked=True) needs an expected weight for every version it sets")
        namespace, name = self.object_name(model)
        isvc = self.get_isvc(model)
        split, versions, state = self._servers(model, isvc)
        if not weights:
            return state
        current = state.weights()
        if expected is not None:
            changed = {v: (w, current.get(v)) for v, w in expected.items() if current.get(v) != w}
            if changed:
                detail = ", ".join(f"v{v} is {now} (expected {was})" for v, (was, now) in sorted(changed.items()))
                raise ConflictError(f"{self.describe()}: traffic changed since it was read: {detail}")
        latest, rolled = versions[split.latest], versions.get(split.other)
        pair = [v for v in (rolled, latest) if v is not None]
        unknown = sorted(v for v in weights if v not in pair)
        if unknown or rolled is None:
            between = (f"between v{rolled} ({split.other}) and v{latest} (latest, {split.latest})" if rolled
                       else f"only to v{latest} ({split.latest}): nothing was rolled out before it")
            what = f"v{unknown[0]} is not one of them" if unknown else "there is no other revision to move to"
            raise NotFoundError(f"{self.describe()}: InferenceService {namespace}/{name} splits traffic {between}; "
                                f"{what} (to serve another model, roll it out in spec.predictor)")
        after = {rolled: current.get(rolled, 0), latest: current.get(latest, 0), **weights}
        if after[rolled] + after[latest] != 100:
            raise UsageError(f"KServe splits in percent: v{rolled} {after[rolled]} + v{latest} {after[latest]} "
                             "must make 100")
        if after[latest] == current.get(latest, 0) and (after[latest] == 100) == (split.canary_percent is None):
            return state  # nothing to write
        patch = self.percent_patch(isvc, split, after[latest])
        written = self._kube.patch(isvc_path(namespace, name), patch, f"InferenceService {namespace}/{name}",
                                   JSON_PATCH)
        return self._read_back(model, written, split, {split.other: after[rolled], split.latest: after[latest]})

    def _read_back(self, model: str, written: dict[str, Any], before: Split, percent: dict[str, int]) -> RouterState:
        """Poll until the status observed a generation after the write and shows ``percent`` per revision."""
        namespace, name = self.object_name(model)
        generation = int((written.get("metadata") or {}).get("generation") or 0)
        deadline = time.monotonic() + self.readback_timeout_s
        isvc = written
        while True:
            split = read_split(isvc)
            if split.latest and split.latest != before.latest:
                raise RouterError(f"{self.describe()}: InferenceService {namespace}/{name} rolled out a new revision "
                                  f"({split.latest}) during the write; read the state again")
            observed = split.observed >= generation or split.observed > before.observed
            shown = {revision: split.percent.get(revision, 0) for revision in percent}
            if observed and shown == percent:
                return self._servers(model, isvc)[2]
            if time.monotonic() >= deadline:
                waiting = (f"status.observedGeneration is {split.observed} (generation {generation})" if not observed
                           else f"the traffic status shows {shown}, not {percent}")
                raise RouterError(f"{self.describe()}: InferenceService {namespace}/{name}: the split was written but "
                                  f"not shown within {self.readback_timeout_s:g}s ({SETTING}.readback_timeout_s): "
                                  f"{waiting}; canaryTrafficPercent reads {split.canary_percent}")
            self.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))
            isvc = self.get_isvc(model)
