"""What the console needs from the rest of Rewind: its services, built on first use.

:class:`console.wiring.ConsoleBackend` builds them over the configured systems;
the tests hand the console one over fake adapters. ``rewind tui`` hands the
console a :data:`BackendLoader` instead: the console paints its first frame,
then reads the config and builds the backend in a thread worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from console.domain.errors import RewindError

if TYPE_CHECKING:  # the services load when the console first uses them, after its first frame
    from console.services.fallback import FallbackService
    from console.services.features import FeatureCatalog, FeatureRollbacks
    from console.services.live import LiveStatus
    from console.services.playbooks import PlaybookRunner
    from console.services.postmortem import PostMortems
    from console.services.readiness import ReadinessService
    from console.services.recovery import RecoveryStats
    from console.services.rollback import RollbackService
    from console.services.shadow import ShadowService


class Backend(Protocol):
    """The console's services. Every method may block (first use builds clients): call them in workers."""

    @property
    def models(self) -> tuple[str, ...]:
        """The configured models, the default first."""

    @property
    def source(self) -> str:
        """Where the configuration came from (shown in the help screen)."""

    def live(self) -> LiveStatus:
        """Per-system reads and the composed snapshot."""

    def rollback(self) -> RollbackService:
        """The rollback use case, with its journal service (``.journal``)."""

    def postmortems(self) -> PostMortems:
        """Closing and exporting incidents."""

    def playbooks(self) -> PlaybookRunner:
        """The playbook runner (the walkthrough), over the same journal as the console's actions."""

    def shadow(self) -> ShadowService:
        """Shadow + promote: the shadow's state and gate, and the plans to start, stop, promote, revert."""

    def fallback(self) -> FallbackService:
        """The fallback's readiness, the router's own engagements, and the plans to engage, restore, drill."""

    def feature_catalog(self) -> FeatureCatalog:
        """The declared side of the features (registry tags, the feature store): Feast loads on first use."""

    def feature_rollbacks(self) -> FeatureRollbacks:
        """Plans feature rollbacks; :meth:`rollback`'s procedure carries them out."""

    def readiness(self) -> ReadinessService:
        """Rollback readiness, measured on the real systems: its ``check`` takes seconds (it loads the previous
        version's artifacts)."""

    def recovery_stats(self) -> RecoveryStats:
        """Speed to rollback, read from :meth:`rollback`'s journal."""

    def close(self) -> None:
        """Release connections."""


BackendLoader = Callable[[], Backend]
"""Reads the config and builds the backend; it blocks (pydantic, the config file), so the console calls it
in a thread worker after its first frame. What it raises ends the console: a :class:`RewindError` (a
missing or invalid config, an unknown ``--model``) is then reported by the CLI in one line, exit code 2."""


class LoadingBackend:
    """Stands in for the backend while the config loads: no models, and every service says so."""

    models: tuple[str, ...] = ()
    source = "the config (still loading)"

    def _loading(self) -> RewindError:
        return RewindError("the config is still loading: try again in a moment")

    def live(self) -> LiveStatus:
        raise self._loading()

    def rollback(self) -> RollbackService:
        raise self._loading()

    def postmortems(self) -> PostMortems:
        raise self._loading()

    def playbooks(self) -> PlaybookRunner:
        raise self._loading()

    def shadow(self) -> ShadowService:
        raise self._loading()

    def fallback(self) -> FallbackService:
        raise self._loading()

    def feature_catalog(self) -> FeatureCatalog:
        raise self._loading()

    def feature_rollbacks(self) -> FeatureRollbacks:
        raise self._loading()

    def readiness(self) -> ReadinessService:
        raise self._loading()

    def recovery_stats(self) -> RecoveryStats:
        raise self._loading()

    def close(self) -> None:
        """Nothing to release."""
