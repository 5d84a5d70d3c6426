"""The ledger application: one method per command and per query (``application.py``),
with what it answers (``results.py``), keyed commands run at most once
(``command_keys.py``), import staging (``staging.py``) and where birth dates are kept
(``birth_dates.py``) in modules of their own."""

from services.ledger.application import Ledger
from services.ledger.birth_dates import BirthDates, BirthDatesInMemory
from services.ledger.results import CommandResult
from services.ledger.staging import UnitLimits, UnitOfWork

__all__ = ["BirthDates", "BirthDatesInMemory", "CommandResult", "Ledger", "UnitLimits",
           "UnitOfWork"]
