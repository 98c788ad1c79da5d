"""Reading MIME structure without a pattern per boundary (fbl/boundary_lines.py) must give the
very tree the stdlib parser gives: same parts, same bodies, preambles, epilogues and defects."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

import pytest

from fbl.boundary_lines import BoundaryLine
from fbl.headers import read_message

from .messages import fixture_files, require_fixtures

SAMPLES = Path(__file__).parent / "samples"


def tree(msg: Message) -> list[tuple]:
    return [
        (
            part.get_content_type(),
            part.items(),
            part.preamble,
            part.epilogue,
            None if part.is_multipart() else part.get_payload(),
            sorted(type(defect).__name__ for defect in part.defects),
        )
        for part in msg.walk()
    ]


def stdlib(raw: bytes) -> Message:
    return BytesParser(policy=compat32).parsebytes(raw)


def test_every_real_report_reads_as_the_stdlib_reads_it():
    require_fixtures()
    files = fixture_files() + sorted(SAMPLES.glob("*.eml"))
    multipart = 0
    for path in files:
        raw = path.read_bytes()
        ours = read_message(raw)
        assert tree(ours) == tree(stdlib(raw)), path.name
        multipart += ours.is_multipart()
    assert multipart > 150  # most reports are multipart


def multipart(boundary: str, body: str, newline: str = "\n") -> bytes:
    head = f'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{boundary}"\n\n'
    return (head + body).replace("\n", newline).encode()


# Boundaries with the characters RFC 2046 allows (and regular-expression specials it does not,
# as real mail has them), and lines that only start like a boundary.
BOUNDARIES = [
    "simple",
    "=_Part_0_1234.5678",
    "'()+_,-./:=? x",
    "a*b+c?d[e]f{1}g|h^i$j\\k",
    "----=_NextPart_000_0000_01D9",
]


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_boundaries_and_line_ends_read_as_the_stdlib_reads_them(boundary, newline):
    body = (
        "preamble\n"
        f"--{boundary}\n"
        "Content-Type: text/plain\n\none\n"
        f"--{boundary}X is not a boundary\n"
        f"--{boundary} \t\n"
        "Content-Type: text/plain\n\ntwo\n"
        f"--{boundary}--  \n"
        "epilogue\n"
    )
    raw = multipart(boundary, body, newline)
    ours = read_message(raw)
    assert tree(ours) == tree(stdlib(raw))
    assert [part.get_payload() for part in ours.get_payload()] == [
        f"one{newline}--{boundary}X is not a boundary",
        "two",
    ]


def test_nested_boundaries_that_share_a_prefix_and_a_missing_close():
    raw = multipart(
        "outer",
        "--outer\n"
        'Content-Type: multipart/alternative; boundary="outer-inner"\n\n'
        "--outer-inner\nContent-Type: text/plain\n\ninner one\n"
        "--outer-inner\nContent-Type: text/html\n\n<p>inner two</p>\n"
        "--outer\nContent-Type: text/plain\n\nlast, never closed\n",
    )
    ours = read_message(raw)
    assert tree(ours) == tree(stdlib(raw))
    assert [part.get_content_type() for part in ours.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/plain",
    ]


def test_a_boundary_line_matches_as_the_compiled_pattern_does():
    line = BoundaryLine("--b.c")
    assert line.match("--b.c\n").group("end") is None
    close = line.match("--b.c--\r\n")
    assert close.group("end") == "--" and close.group("linesep") == "\r\n"
    assert line.match("--b.c-- \t") is not None
    assert line.match("--bxc\n") is None  # the dot is literal
    assert line.match("--b.cd\n") is None
    assert line.match(" --b.c\n") is None


@pytest.mark.parametrize(("encoded", "boundary"), [("%E2%82%AC", "€"), ("a%0Ab", "a\nb")])
def test_boundaries_given_in_rfc_2231_encoding_read_as_the_stdlib_reads_them(encoded, boundary):
    # A parameter in RFC 2231 encoding may carry any character, a line end among them.
    raw = (
        f"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary*=utf-8''{encoded}\n\n"
        f"--{boundary}\nContent-Type: text/plain\n\none\n--{boundary}--\n"
    ).encode()
    ours = read_message(raw)
    assert ours.get_boundary() == boundary
    assert tree(ours) == tree(stdlib(raw))
