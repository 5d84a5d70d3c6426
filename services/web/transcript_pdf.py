"""The learner's transcript as a PDF (fpdf2), made from the same experiences the API
answers for ``GET /learners/{id}/transcript``: nothing on it that the CSV export and the
JSON do not hold (decision 056).

A PDF is a copy for people to read, not a credential: it is not signed. What a verifier
checks are the Open Badges and the CLR, which the same page offers. The PDF uses the PDF
core font (Helvetica), which every reader has and which keeps the file small and the same
on every machine; text outside Latin-1 is transliterated where Unicode allows it and
replaced by ``?`` where it does not.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from services.web.hours_view import hm


def latin1(text: object) -> str:
    """What the core font can draw: Latin-1, after Unicode compatibility mapping."""
    value = unicodedata.normalize("NFKC", str(text))
    for wide, narrow in (("\u2013", "-"), ("\u2014", "-"), ("\u2212", "-"), ("\u2019", "'"),
                         ("\u201c", '"'), ("\u201d", '"'), ("\u2026", "...")):
        value = value.replace(wide, narrow)
    return "".join(_latin1_char(c) for c in value)


def _latin1_char(char: str) -> str:
    if ord(char) < 256:
        return char
    base = "".join(c for c in unicodedata.normalize("NFKD", char)
                   if not unicodedata.combining(c))
    return base if base and all(ord(c) < 256 for c in base) else "?"


def _credentials(experience: Mapping[str, Any]) -> str:
    parts = []
    for credential in experience.get("credentials") or []:
        state = "" if credential.get("status") in (None, "in force") else (
            f" ({credential['status']})")
        parts.append(f"{credential['kind']}, {credential['issuer']}, "
                     f"{credential['issued_on']}{state}")
    return "; ".join(parts) or "-"


def transcript_pdf(learner_id: str, experiences: Sequence[Mapping[str, Any]],
                   made_on: date) -> bytes:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title("Work-based learning transcript")
    pdf.set_author("wbl-ledger")
    pdf.set_creator("wbl-ledger")
    pdf.set_lang("en")
    # the same data on the same day makes the same file
    pdf.set_creation_date(datetime.combine(made_on, time(0), UTC))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Work-based learning transcript", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 6, latin1(f"Learner: {learner_id}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(0, 6, f"Made on {made_on.isoformat()} from the ledger's transcript notations.",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    if not experiences:
        pdf.cell(0, 6, "No work-based-learning experience is recorded yet.",
                 new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        pdf.set_font("Helvetica", "", 9)
        with pdf.table(col_widths=(52, 26, 36, 18, 22, 36), text_align=(
                "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "LEFT"),
                line_height=5, first_row_as_headings=True) as table:
            heading = table.row()
            for title in ("Experience", "Type", "Dates", "Hours (h:mm)", "Status",
                          "Credentials"):
                heading.cell(title)
            for e in experiences:
                row = table.row()
                what = e.get("title") or "Placement"
                if e.get("employer_name"):
                    what += f", {e['employer_name']}"
                row.cell(latin1(what))
                row.cell(latin1(f"{e.get('wbl_type_label') or e.get('wbl_type') or ''} "
                                f"({e.get('course_code', '')} {e.get('notation_code', '')})"))
                row.cell(f"{e['first_day']} to {e['last_day']}")
                row.cell(hm(int(e["approved_minutes"])))
                row.cell(latin1(e.get("status_label") or e.get("status") or ""))
                row.cell(latin1(_credentials(e)))
    pdf.ln(4)
    pdf.set_font("Helvetica", "I", 8)
    pdf.multi_cell(0, 4, "Hours are approved hours only, in hours and minutes (h:mm). The "
                   "CSV export holds the same experiences as notation lines for a student "
                   "information system. This copy is not signed; "
                   "the signed credentials (Open Badges 3.0) and the Comprehensive Learner "
                   "Record are what a verifier checks.", new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)
    return bytes(pdf.output())
