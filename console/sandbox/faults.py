"""The sandbox as a drill's fault injector: its failure scenarios, switched by name."""

from __future__ import annotations

from pathlib import Path

from console.sandbox.manager import Sandbox
from console.sandbox.names import SCENARIOS


class SandboxFaults:
    """A :class:`~console.adapters.protocols.FaultInjector` on a running sandbox."""

    def __init__(self, state_dir: Path) -> None:
        self.sandbox = Sandbox(state_dir)

    def describe(self) -> str:
        """Which sandbox."""
        return f"the sandbox in {self.sandbox.dir}"

    def scenarios(self) -> tuple[str, ...]:
        """Every scenario, ``healthy`` included."""
        return SCENARIOS

    def inject(self, scenario: str) -> None:
        """Switch the sandbox to ``scenario``."""
        self.sandbox.set_scenario(scenario)
