"""What became of an outbound HTTP call: a notification posted to a webhook, or an endpoint called.

A :class:`Delivery` (success) and a :class:`DeliveryError` (failure) name the
webhook or endpoint by its config *name* only. Webhook URLs carry tokens and
endpoint headers carry credentials, so neither ever appears in these values:
they are what reaches the journal, the console, logs and exported timelines.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.domain.errors import ExternalSystemError


@dataclass(frozen=True)
class Delivery:
    """A receiver's answer to one outbound call.

    Attributes:
        status: the HTTP status code the receiver answered.
        ok: whether the receiver accepted it (a 2xx answer).
        summary: one line for the journal and the console, naming the webhook or
            endpoint by name, e.g. ``webhook oncall: posted (HTTP 200, 41 ms)``.
            Never a URL, never a header value.
    """

    status: int
    ok: bool
    summary: str

    def __post_init__(self) -> None:
        if "\n" in self.summary or "\r" in self.summary:
            raise ValueError("a delivery's summary is one line")


class DeliveryError(ExternalSystemError):
    """An outbound call failed: unknown name, unreachable, timed out, or refused with a non-2xx answer.

    The message is one line naming the webhook or endpoint by its config name,
    never its URL or a header value.

    Attributes:
        name: the webhook's or endpoint's config name.
        status: the HTTP status answered, or ``None`` when no answer came.
        outcome_unknown: the request may have reached the receiver and been acted
            on even though no answer came (a read timeout, a connection dropped
            mid-answer): retry only with the same dedupe key.
    """

    def __init__(self, message: str, *, name: str, status: int | None = None,
                 outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.name = name
        self.status = status
        self.outcome_unknown = outcome_unknown


class NotifyError(DeliveryError):
    """A notification could not be posted to a webhook (config ``notify.webhooks``)."""


class EndpointError(DeliveryError):
    """An endpoint (config ``endpoints``) could not be called, or refused the call."""
