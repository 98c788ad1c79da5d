"""Finding the sender's physical postal address in a message's visible text.

CAN-SPAM (15 U.S.C. 7704(a)(5)(A)(iii)) asks every commercial message for "a valid physical
postal address of the sender": a street address or a post office box registered with the
postal service. No pattern recognises every address on earth; these recognise the usual US,
UK, German and other EU footers:

- a street with its number: "1600 Amphitheatre Pkwy", "221B Baker Street", "Hauptstraße 5",
  "Keizersgracht 123", "12 rue de la Paix", "Calle Mayor 12"; or a PO box: "P.O. Box 123",
  "Postfach 10 20 30", "Boîte postale 12";
- a postal code: "CA 94043" (a state and ZIP), "SW1A 2AA" (UK), "K1A 0B1" (Canada), or a code
  and its town: "10115 Berlin", "75008 Paris", "1012 AB Amsterdam", "00-950 Warszawa".

Both within a few lines of each other are an address. One without the other is reported as
such, to be looked at by a person rather than failed. Pure: imports nothing from Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PostalAddress", "find_postal_address"]

# Lines apart that a street and its postal code may stand (name, street, town, country).
NEARBY_LINES = 2


@dataclass(frozen=True, slots=True)
class PostalAddress:
    complete: bool  # a street or PO box and a postal code together
    text: str  # the lines it was found on, joined
    street: str  # what was read as the street or PO box ("" if none)
    postal_code: str  # what was read as the postal code ("" if none)


_STREET_SUFFIXES_EN = (
    r"Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|"
    r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Terrace|Ter|Square|Sq|Trail|Trl|Plaza|Close|Crescent|"
    r"Cres|Gardens|Grove|Mews|Row|Walk|Wharf|Green|Hill|Park|Broadway|Alley|Loop|Pike|Turnpike|"
    r"Center|Centre|Expressway|Freeway"
)
# German, Dutch and Nordic streets end in their kind and take the number after the name.
_STREET_SUFFIXES_NAME_FIRST = (
    r"stra(?:ß|ss)e|str\.|weg|platz|allee|gasse|ring|damm|ufer|chaussee|markt|steig|pfad|hof|"
    r"graben|kai|straat|gracht|laan|plein|kade|dijk|singel|vej|gade|gatan|vägen|gata|veien|vei"
)
_CAPITALISED = r"[A-ZÄÖÜÀ-ÞŁŚŻŹ][\w'’.-]*"

_STREETS = [
    # 1600 Amphitheatre Pkwy / 221B Baker Street / 350 5th Ave
    re.compile(
        rf"\b\d{{1,6}}[A-Za-z]?(?:-\d+)?,?\s+(?:[NSEW]\.?\s+)?(?:(?:{_CAPITALISED}|\d+(?:st|nd|rd|th))\s+){{1,4}}"
        rf"(?i:{_STREET_SUFFIXES_EN})\b\.?"
    ),
    # Hauptstraße 5 / Keizersgracht 123 (the kind ends the name: two letters at least before it)
    re.compile(
        r"\b[A-ZÄÖÜ][\w'’.]*?[a-zäöüß]{2}"
        rf"(?i:{_STREET_SUFFIXES_NAME_FIRST})\s*\d{{1,4}}(?:\s?[a-zA-Z])?\b"
    ),
    # Alte Straße 12a / Am Ring 5 / Unter den Linden Str. 7 (the kind a word of its own)
    re.compile(
        r"\b[A-ZÄÖÜ][\w'’.]*[\s-]+(?:[\w'’.]+[\s-]+){0,2}?(?=[A-ZÄÖÜ])"
        rf"(?i:{_STREET_SUFFIXES_NAME_FIRST})\s*\d{{1,4}}(?:\s?[a-zA-Z])?\b"
    ),
    # 12 rue de la Paix / 5bis, avenue Foch
    re.compile(
        r"\b\d{1,5}(?:\s?(?:bis|ter|[A-Za-z]))?,?\s+"
        r"(?i:rue|avenue|av\.|boulevard|bd|place|chemin|all[ée]e|quai|impasse|route|cours)"
        r"(?:\s+(?!\d)[\w'’-]+){1,5}"
    ),
    # Calle Mayor 12 / Via Roma 1 / Rua Augusta, 274 / ul. Marszałkowska 10
    re.compile(
        r"(?:\b(?:Calle|Avenida|Avda\.|Paseo|Plaza|Via|Viale|Piazza|Corso|Rua|Carrer|Travessa|"
        r"ul\.|ulica|al\.|aleja)|\bC/)"
        r"\s+[\w'’ .-]{2,40}?,?\s+(?:n\.?\s?º?\s?)?\d{1,4}\b"
    ),
]
_PO_BOX = re.compile(
    r"\b(?:(?i:P\.?\s?O\.?\s?Box|Post\s+Office\s+Box|Postfach|Bo[iî]te\s+postale|"
    r"Apartado(?:\s+de\s+correos)?|Casella\s+postale|Postbus|Postboks)|B\.?P\.?)\s*\d[\d ]*"
)
_US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP"
).split()
_TOWN = r"[A-ZÄÖÜÀ-ÞŁŚŻŹ][\w'’.-]{1,}"
_POSTAL_CODES = [
    # CA 94043 / NY, 10001-1234
    re.compile(rf"\b(?:{'|'.join(_US_STATES)})\.?,?\s+\d{{5}}(?:-\d{{4}})?\b"),
    # SW1A 2AA / EC1A 1BB / M1 1AE
    re.compile(r"\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?|GIR)\s?\d[ABD-HJLNP-UW-Z]{2}\b"),
    # K1A 0B1 (Canada)
    re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[A-Z]\s?\d[A-Z]\d\b"),
    # 10115 Berlin / D-80331 München / 75008 Paris / 28013 Madrid
    re.compile(rf"\b(?:[A-Z]{{1,2}}-)?\d{{5}}\s+{_TOWN}"),
    # 1010 Wien / 8001 Zürich / 1012 AB Amsterdam / 1000 Bruxelles
    re.compile(rf"\b(?:[A-Z]{{1,2}}-)?\d{{4}}(?:\s?[A-Z]{{2}})?\s+{_TOWN}"),
    # 00-950 Warszawa / 1000-001 Lisboa
    re.compile(rf"\b\d{{2,4}}-\d{{3}}\s+{_TOWN}"),
]
# "© 2024 Acme" is a year and a name, not a postal code and a town.
_COPYRIGHT = re.compile(r"(?i)(?:©|\(c\)|copyright)\s*(?:\d{4}\s*[-–]\s*)?$")


# An address fits in a line this long; a longer line (HTML without blocks) is read in
# overlapping pieces, so that no line costs more than its length.
MAX_LINE = 400
_OVERLAP = 100


def _pieces(line: str) -> list[str]:
    if len(line) <= MAX_LINE:
        return [line] if line else []
    step = MAX_LINE - _OVERLAP
    return [line[i : i + MAX_LINE] for i in range(0, len(line) - _OVERLAP, step)]


def _matches(patterns, line: str) -> list[re.Match]:
    return [m for pattern in patterns for m in pattern.finditer(line)]


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    street: str
    postal_code: str


def _read(line: str) -> _Line:
    streets = _matches(_STREETS, line) + list(_PO_BOX.finditer(line))
    codes = [
        m
        for m in _matches(_POSTAL_CODES, line)
        if not _COPYRIGHT.search(line[max(0, m.start() - 24) : m.start()])
        # A US house number with the street's name ("10250 Constellation Blvd") is no code.
        and not any(s.start() <= m.start() < s.end() for s in streets)
    ]
    first = min(streets, key=lambda m: m.start(), default=None)
    code = min(codes, key=lambda m: m.start(), default=None)
    return _Line(
        text=line,
        street=first.group(0).strip() if first else "",
        postal_code=code.group(0).strip() if code else "",
    )


def find_postal_address(text: str) -> PostalAddress | None:
    """The first complete address in `text`, else the first part of one, else None."""
    lines = [
        _read(piece)
        for raw in text.splitlines()
        for piece in _pieces(" ".join(raw.replace("\xa0", " ").split()))
    ]
    for i, line in enumerate(lines):
        if not line.street:
            continue
        for j in range(max(0, i - NEARBY_LINES), min(len(lines), i + NEARBY_LINES + 1)):
            if lines[j].postal_code:
                shown = lines[min(i, j) : max(i, j) + 1]
                return PostalAddress(
                    complete=True,
                    text=", ".join(each.text for each in shown),
                    street=line.street,
                    postal_code=lines[j].postal_code,
                )
    partial = next((line for line in lines if line.street or line.postal_code), None)
    if partial is None:
        return None
    return PostalAddress(
        complete=False,
        text=partial.text,
        street=partial.street,
        postal_code=partial.postal_code,
    )
