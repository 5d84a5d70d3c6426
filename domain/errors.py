"""One exception class per kind of broken rule, each carrying a stable code.

The code is part of the public contract: the HTTP API turns it into the
RFC 9457 ``type`` (``/errors/<code>``), so clients and auditors can tell rules
apart without parsing prose. Codes never change meaning once published.
"""

from __future__ import annotations


class DomainError(Exception):
    """A command was refused; nothing was recorded.

    ``field`` names the input at fault, when there is one, so a form can point
    at it.
    """

    code: str = "domain-rule"
    title: str = "A rule of the ledger was broken"

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.field = field


class RuleViolated(DomainError):
    """The command is well formed but breaks a business rule (HTTP 422)."""

    code = "rule-violated"
    title = "The command breaks a rule"


class WrongState(DomainError):
    """The aggregate is not in a state that allows this transition (HTTP 409)."""

    code = "wrong-state"
    title = "Not allowed in the current state"


class UnknownAggregate(DomainError):
    """The id names nothing the ledger has recorded (HTTP 404)."""

    code = "unknown-id"
    title = "Unknown id"


class StaleVersion(DomainError):
    """The caller's expected version is not the current one (HTTP 412)."""

    code = "stale-version"
    title = "The record changed since you read it"


class ConcurrentChange(DomainError):
    """Another writer recorded an event first; retrying re-checks the rules (HTTP 409)."""

    code = "concurrent-change"
    title = "Someone else changed this record at the same time"


class NotPermitted(DomainError):
    """The actor may not do this to this record, whatever its state (HTTP 403).

    Supervisors act only on the placements they supervise; nobody approves their own
    hours. These are separation-of-duties rules an auditor checks (29 CFR 29.5(b)(6)
    asks sponsors to keep adequate records of supervision).
    """

    code = "not-permitted"
    title = "You may not do this"
