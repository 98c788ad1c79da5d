"""The proof timeline as files to hand to a regulator or a court: CSV and PDF (fpdf2)."""

from __future__ import annotations

import csv
import datetime
import io
import json

from django.core.serializers.json import DjangoJSONEncoder
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from compliance.dsr.proof import Proof

CSV_COLUMNS = ["at", "kind", "summary", "details"]


def _details(details: dict) -> str:
    return json.dumps(details, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False)


def _at(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def to_csv(proof: Proof) -> str:
    """One row per entry, oldest first; `details` as JSON so nothing is lost."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in proof.entries:
        # A leading = + - @ would make a spreadsheet run the cell as a formula.
        summary = f"'{entry.summary}" if entry.summary[:1] in "=+-@" else entry.summary
        writer.writerow([_at(entry.at), entry.kind, summary, _details(entry.details)])
    return out.getvalue()


def _latin1(text: str) -> str:
    # The PDF's built-in fonts cover Latin-1 only; anything else is shown as "?" rather than
    # failing the document (the CSV and JSON keep every character).
    return text.encode("latin-1", "replace").decode("latin-1")


def _lines(details: dict, indent: str = "") -> list[str]:
    lines = []
    for key, value in sorted(details.items()):
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.extend(_lines(value, indent + "    "))
        elif isinstance(value, list):
            lines.append(f"{indent}{key}:")
            for item in value:
                if isinstance(item, dict):
                    lines.append(f"{indent}  - " + _details(item))
                else:
                    lines.append(f"{indent}  - {item}")
        elif value not in (None, "", [], {}):
            shown = _at(value) if isinstance(value, datetime.datetime) else value
            lines.append(f"{indent}{key}: {shown}")
    return lines


class _ProofPDF(FPDF):
    """Every page numbered "n of N" and naming the address, so a loose page is still placed."""

    footer_text = ""

    def footer(self):
        self.set_y(-12)
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 5, f"{self.footer_text}  page {self.page_no()} of {{nb}}", align="C")


def to_pdf(proof: Proof, *, generated_at: datetime.datetime) -> bytes:
    pdf = _ProofPDF(format="A4")
    pdf.footer_text = _latin1(f"Proof of compliance for {proof.address}")
    pdf.set_title(_latin1(f"Proof of compliance: {proof.address}"))
    pdf.set_creator("compliance service")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw
    newline = {"new_x": XPos.LMARGIN, "new_y": YPos.NEXT}

    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(width, 10, "Proof of compliance", **newline)
    pdf.set_font("Helvetica", "", 10)
    for line in [
        f"Address: {proof.address}",
        f"Keyed hash: {proof.address_hash.hex()}",
        f"Tenant: {proof.tenant.slug if proof.tenant else 'every tenant'}",
        f"Generated: {_at(generated_at)}",
        f"Entries: {len(proof.entries)}",
    ]:
        pdf.multi_cell(width, 5, _latin1(line), **newline)
    pdf.ln(4)

    for entry in proof.entries:
        pdf.set_font("Helvetica", "B", 10)
        pdf.multi_cell(width, 5, _latin1(f"{_at(entry.at)}  [{entry.kind}]"), **newline)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(width, 5, _latin1(entry.summary), **newline)
        pdf.set_font("Courier", "", 7)
        for line in _lines(entry.details):
            pdf.multi_cell(width, 3.5, _latin1(line), **newline)
        pdf.ln(2)
    if not proof.entries:
        pdf.multi_cell(width, 5, "Nothing is recorded about this address.", **newline)
    return bytes(pdf.output())
