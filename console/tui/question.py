"""A question a worker waits on and the event loop answers: a confirmation, a playbook choice.

The action procedure and the playbook runner run in thread workers; when they
need the responder, their face posts a message carrying a :class:`PendingQuestion`
and blocks on it. The handler on the event loop answers it once (``give``); the
worker may stop waiting first (``close``: a timeout, a closing console). Whichever
comes first wins, so a late answer never acts on a question nobody waits for.
"""

from __future__ import annotations

import threading


class PendingQuestion:
    """One open question: answered once from the event loop, or closed by the worker that asked it.

    Args:
        step_id: the playbook step that asks it (``""`` for the overview's own actions).
        kind: ``choice`` or ``confirm``.
    """

    def __init__(self, step_id: str, kind: str) -> None:
        self.step_id = step_id
        self.kind = kind
        self.answered = threading.Event()
        self.answer: object = None
        self.closed = False
        self.dialog: object | None = None
        """The confirmation dialog showing it (set on the event loop), to take it down on a timeout."""
        self._lock = threading.Lock()

    def give(self, answer: object) -> bool:
        """Answer it (on the event loop); ``False`` when it was answered or closed already."""
        with self._lock:
            if self.closed or self.answered.is_set():
                return False
            self.answer = answer
            self.answered.set()
            return True

    def close(self) -> bool:
        """Stop waiting (in the worker); ``False`` when an answer came first."""
        with self._lock:
            if self.answered.is_set():
                return False
            self.closed = True
            return True
