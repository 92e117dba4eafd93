"""The errors every layer raises, each mapped to an exit code.

An error's message is one line that names the file, setting or system at fault;
the CLI prints it as is, without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations


class RewindError(Exception):
    """Base class of the errors a user should see as one clear line."""

    exit_code = 1


class ConfigError(RewindError):
    """The configuration is missing, malformed or incomplete (exit code 2)."""

    exit_code = 2


class UsageError(RewindError):
    """The command line asks for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class ExternalSystemError(RewindError):
    """An outside system (registry, router, metrics, journal) failed or is unreachable."""


class RegistryError(ExternalSystemError):
    """The model registry failed, or refused a request."""


class RegistryUnsupported(RegistryError):
    """The configured registry cannot do this at all (GTO has no version tags): a limit, not a failure."""


class RouterError(ExternalSystemError):
    """The traffic router failed, or refused a request."""


class MetricsError(ExternalSystemError):
    """The metrics source failed, or refused a query."""


class FeatureStoreError(ExternalSystemError):
    """The feature store (Feast) could not be read or written."""


class AlertingError(ExternalSystemError):
    """Alertmanager could not be reached or answered something unreadable."""


class JournalError(ExternalSystemError):
    """The journal's database failed, is unreachable, or holds something this Rewind cannot read."""


class ChainBrokenError(RewindError):
    """An incident's hash chain does not verify: an event was edited, deleted, reordered or inserted."""


class NotFoundError(RewindError):
    """A model, version, alias, backend or server that does not exist."""


class ConflictError(RewindError):
    """Compare-and-set failed: the state changed since the caller read it."""


class LockHeldError(ConflictError):
    """Another action holds the model's lock."""


class SandboxError(RewindError):
    """The local sandbox could not be started, stopped or driven."""
