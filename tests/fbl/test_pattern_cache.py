"""Compiled report rules kept between processes (fbl/pattern_cache.py): what comes out of the
cache must be the very pattern `re.compile` gives, and a cache that is missing, stale, broken
or unwritable must cost nothing but the compile."""

from __future__ import annotations

import marshal
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fbl import pattern_cache
from fbl.pattern_cache import PatternCache

ROOT = Path(__file__).resolve().parents[2]

PATTERNS = [
    (r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)", 0),
    (r"(?P<user>[^@\s]+)@(?P<domain>[a-z0-9.-]+)", re.IGNORECASE),
    (r"(?im)^[ \t>]*(?:to|recipients?|an|à|para)[ \t]*:[ \t]*(.{1,500})$", 0),
    (r"user unknown|no such (?:user|mailbox)", re.MULTILINE | re.DOTALL),
]
TEXT = "Recipient: <Jane.Doe@Example.COM>\n550 5.1.1 user unknown\nTo: someone@example.org\n"


def written_cache(path: Path) -> PatternCache:
    cache = PatternCache(str(path))
    for pattern, flags in PATTERNS:
        cache.compile(pattern, flags)
    assert cache.write(always=True)
    return cache


def assert_same_as_re(compiled: re.Pattern[str], pattern: str, flags: int) -> None:
    expected = re.compile(pattern, flags)
    assert compiled == expected  # same pattern, flags and compiled code
    assert compiled.groupindex == expected.groupindex
    assert compiled.groups == expected.groups
    assert [m.groups() for m in compiled.finditer(TEXT)] == [
        m.groups() for m in expected.finditer(TEXT)
    ]


def test_patterns_read_back_are_those_re_compiles(tmp_path):
    path = tmp_path / "patterns.marshal"
    written_cache(path)

    again = PatternCache(str(path))
    for pattern, flags in PATTERNS:
        assert_same_as_re(again.compile(pattern, flags), pattern, flags)
    assert again.hits == len(PATTERNS)


def test_a_cached_pattern_is_not_compiled_again(tmp_path, monkeypatch):
    path = tmp_path / "patterns.marshal"
    written_cache(path)
    again = PatternCache(str(path))

    def no_parsing(*args, **kwargs):
        raise AssertionError("compiled although cached")

    monkeypatch.setattr(re._parser, "parse", no_parsing)
    for pattern, flags in PATTERNS:
        assert again.compile(pattern, flags).pattern == pattern


def test_every_report_rule_round_trips(tmp_path):
    import fbl.parse  # noqa: F401 - compiles every rule through the package's cache

    rules = pattern_cache.CACHE.used
    assert len(rules) > 50
    path = tmp_path / "patterns.marshal"
    first = PatternCache(str(path))
    for pattern, flags in rules:
        first.compile(pattern, flags)
    assert first.write(always=True)

    again = PatternCache(str(path))
    for pattern, flags in rules:
        assert again.compile(pattern, flags) == re.compile(pattern, flags)
    assert again.hits == len(rules)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not marshal data at all",
        marshal.dumps(((1, "another Python", "cpython-99", 0, 4), {}))[:-3],  # cut short
        marshal.dumps({"no": "stamp"}),
    ],
    ids=["empty", "garbage", "truncated", "wrong-shape"],
)
def test_a_broken_file_is_ignored(tmp_path, content):
    path = tmp_path / "patterns.marshal"
    path.write_bytes(content)
    cache = PatternCache(str(path))
    for pattern, flags in PATTERNS:
        assert_same_as_re(cache.compile(pattern, flags), pattern, flags)
    assert cache.hits == 0


def rewrite(path: Path, edit) -> None:
    """The cache file at `path` with its (stamp, entries) passed through `edit`."""
    stamp, entries = marshal.loads(path.read_bytes())
    path.write_bytes(marshal.dumps(edit(stamp, entries)))


def test_a_file_from_another_python_is_ignored(tmp_path):
    path = tmp_path / "patterns.marshal"
    written_cache(path)
    rewrite(path, lambda stamp, entries: ((stamp[0], "3.99.0 (other)", *stamp[2:]), entries))

    cache = PatternCache(str(path))
    pattern, flags = PATTERNS[0]
    assert_same_as_re(cache.compile(pattern, flags), pattern, flags)
    assert cache.hits == 0


def test_an_entry_the_engine_refuses_is_compiled_instead(tmp_path):
    path = tmp_path / "patterns.marshal"
    written_cache(path)
    key = (PATTERNS[0][0], int(PATTERNS[0][1]))

    def bad_code(stamp, entries):
        final_flags, _code, *rest = entries[key]
        return stamp, {**entries, key: (final_flags, [999_999, 1, 2], *rest)}

    rewrite(path, bad_code)

    cache = PatternCache(str(path))
    assert_same_as_re(cache.compile(*PATTERNS[0]), *PATTERNS[0])


def test_a_bad_pattern_raises_as_re_does(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache = PatternCache(str(tmp_path / "patterns.marshal"))
    with pytest.raises(re.error, match="missing \\), unterminated subpattern"):
        cache.compile("(unclosed")
    cache.write()  # nothing compiled, so nothing to write
    assert not (tmp_path / "patterns.marshal").exists()


def test_a_process_that_compiled_writes_what_it_compiled(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "__pycache__" / "patterns.marshal"
    cache = PatternCache(str(path))
    for pattern, flags in PATTERNS:
        cache.compile(pattern, flags)
    assert cache.write()
    assert PatternCache(str(path)).compile(*PATTERNS[2]) == re.compile(*PATTERNS[2])
    assert sorted(p.name for p in path.parent.iterdir()) == ["patterns.marshal"]


def test_nothing_is_written_when_python_writes_no_bytecode(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / "patterns.marshal"
    cache = PatternCache(str(path))
    cache.compile(*PATTERNS[0])
    cache.write()
    assert not path.exists()
    assert cache.write(always=True)  # what `python -m fbl.pattern_cache` does
    assert PatternCache(str(path)).compile(*PATTERNS[0]) == re.compile(*PATTERNS[0])


def test_an_unwritable_place_is_not_an_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = PatternCache(str(blocker / "__pycache__" / "patterns.marshal"))
    assert_same_as_re(cache.compile(*PATTERNS[1]), *PATTERNS[1])
    assert cache.write(always=True) is False
    assert list(tmp_path.iterdir()) == [blocker]  # no temporary file left behind


def test_an_edited_rule_is_compiled_anew_and_kept_beside_the_old(tmp_path):
    path = tmp_path / "patterns.marshal"
    written_cache(path)
    cache = PatternCache(str(path))
    edited = PATTERNS[3][0] + "|mailbox unavailable"
    assert_same_as_re(cache.compile(edited, PATTERNS[3][1]), edited, PATTERNS[3][1])
    assert cache.hits == 0
    assert cache.write(always=True)
    again = PatternCache(str(path))
    again.compile(edited, PATTERNS[3][1])
    again.compile(*PATTERNS[0])
    assert again.hits == 2


def test_the_install_step_leaves_every_rule_cached_for_the_next_process():
    written = subprocess.run(
        [sys.executable, "-m", "fbl.pattern_cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip().endswith(" patterns")
    assert Path(pattern_cache.CACHE.path).is_file()

    probe = (
        "import fbl.parse; from fbl.pattern_cache import CACHE; print(CACHE.hits, len(CACHE.used))"
    )
    later = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    hits, used = later.stdout.split()
    assert int(used) > 50
    assert hits == used


def test_parse_report_keeps_the_rules_it_compiled(tmp_path):
    # manage.py parse_report ends without the interpreter's teardown (fbl/report_cli.py,
    # exit_now): what it compiled must still be written, as at an ordinary exit.
    cache_file = Path(pattern_cache.CACHE.path)
    cache_file.unlink(missing_ok=True)
    report = tmp_path / "bounce.eml"
    report.write_bytes(
        b"From: MAILER-DAEMON@example.net\r\nTo: sender@example.com\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n\r\n"
        b"<jane@example.org>: host mx.example.org[192.0.2.1] said: 550 5.1.1 user unknown\r\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "manage.py", "parse_report", str(report)],
        cwd=ROOT,
        capture_output=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert b"jane@example.org" in result.stdout
    assert cache_file.is_file()
    reread = PatternCache(str(cache_file))
    for pattern, flags in pattern_cache.CACHE.used:
        reread.compile(pattern, flags)
    assert reread.hits == len(pattern_cache.CACHE.used)
