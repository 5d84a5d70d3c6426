"""Bulk import of historical records from CSV: placement trackers, timesheets, and RAPIDS
apprentice registrations. Every row goes through the ledger's own commands, so the domain's
rules judge it exactly as they judge a live command."""

from services.importing.core import (
    ImportKind,
    ImportMode,
    ImportOptions,
    ImportReport,
    RowRejection,
    import_file,
)

__all__ = ["ImportKind", "ImportMode", "ImportOptions", "ImportReport", "RowRejection",
           "import_file"]
