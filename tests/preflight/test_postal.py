"""Postal addresses in a message's text: the usual US, UK, German and other EU footers."""

from __future__ import annotations

import pytest

from compliance.preflight.postal import find_postal_address

COMPLETE = {
    "US street": (
        "Google LLC, 1600 Amphitheatre Pkwy, Mountain View, CA 94043",
        "1600 Amphitheatre Pkwy",
        "CA 94043",
    ),
    "US on lines": ("Acme Corp\n350 5th Ave\nNew York, NY 10118\nUSA", "350 5th Ave", "NY 10118"),
    "US PO box": ("Acme Inc., P.O. Box 1234, Springfield, IL 62704", "P.O. Box 1234", "IL 62704"),
    "UK": (
        "Acme Ltd\n221B Baker Street\nLondon NW1 6XE\nUnited Kingdom",
        "221B Baker Street",
        "NW1 6XE",
    ),
    "Canada": ("Acme, 24 Sussex Drive, Ottawa ON K1M 1M4", "24 Sussex Drive", "K1M 1M4"),
    "DE joined": ("Beispiel GmbH · Hauptstraße 5 · 10115 Berlin", "Hauptstraße 5", "10115 Berlin"),
    "DE separate": ("Alte Straße 12a\nD-80331 München", "Alte Straße 12a", "D-80331 München"),
    "DE Postfach": (
        "Beispiel GmbH, Postfach 10 20 30, 10115 Berlin",
        "Postfach 10 20 30",
        "10115 Berlin",
    ),
    "AT": ("Ringstraße 1, 1010 Wien", "Ringstraße 1", "1010 Wien"),
    "NL": (
        "Voorbeeld BV, Keizersgracht 123, 1012 AB Amsterdam",
        "Keizersgracht 123",
        "1012 AB Amsterdam",
    ),
    "FR": ("Exemple SAS, 12 rue de la Paix, 75002 Paris", "12 rue de la Paix", "75002 Paris"),
    "ES": ("Ejemplo SL, Calle Mayor 12, 28013 Madrid", "Calle Mayor 12", "28013 Madrid"),
    "IT": ("Esempio Srl, Via Roma 1, 00184 Roma", "Via Roma 1", "00184 Roma"),
    "PL": (
        "Firma, ul. Marszałkowska 10, 00-950 Warszawa",
        "ul. Marszałkowska 10",
        "00-950 Warszawa",
    ),
}


@pytest.mark.parametrize("case", COMPLETE, ids=str)
def test_complete_addresses_are_found(case):
    text, street, code = COMPLETE[case]
    found = find_postal_address(f"Thanks for reading.\n\n{text}\n\n© 2026 Example")
    assert found is not None
    assert (found.complete, found.street, found.postal_code) == (True, street, code)


@pytest.mark.parametrize(
    "text",
    [
        "Thanks for reading! See you next week.",
        "© 2024 Acme Inc. All rights reserved.",
        "Bring 5 friends to the party and save 20%.",
        "Call us on 0800 123 4567 or write to us.",
    ],
)
def test_text_without_an_address_has_none(text):
    assert find_postal_address(text) is None


@pytest.mark.parametrize(
    ("text", "street", "code"),
    [
        ("Copyright 2024 Acme\n12 Main Street", "12 Main Street", ""),
        ("Beispiel GmbH, 10115 Berlin", "", "10115 Berlin"),
        ("Acme, PO Box 77", "PO Box 77", ""),
    ],
)
def test_half_an_address_is_found_as_incomplete(text, street, code):
    found = find_postal_address(text)
    assert found is not None
    assert (found.complete, found.street, found.postal_code) == (False, street, code)


def test_a_street_and_a_postal_code_far_apart_are_not_one_address():
    text = "12 Main Street\n\nline\nline\nline\nSpringfield, IL 62704"
    assert find_postal_address(text).complete is False


def test_a_long_line_without_breaks_is_still_read():
    text = "word " * 5000 + "Acme, 12 Main Street, Springfield, IL 62704 " + "word " * 5000
    found = find_postal_address(text)
    assert (found.complete, found.street) == (True, "12 Main Street")
