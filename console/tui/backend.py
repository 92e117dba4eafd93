"""What the console needs from the rest of Rewind: its services, built on first use.

:class:`console.wiring.ConsoleBackend` builds them over the configured systems;
the tests hand the console one over fake adapters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the services load when the console first uses them, after its first frame
    from console.services.live import LiveStatus
    from console.services.postmortem import PostMortems
    from console.services.rollback import RollbackService


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

    def close(self) -> None:
        """Release connections."""
