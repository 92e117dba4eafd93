"""Pure types and rules: no I/O, no client libraries, no Textual.

Everything here is deterministic and unit-tested: versions and aliases, router
weights, the metric catalogue and its criteria, verdicts and the status matrix.
"""
