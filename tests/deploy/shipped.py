"""The deployment files the repository ships, read as systemd and gunicorn read them.

The units name production paths (/opt/compliance, its virtualenv, /var/lib/compliance); `local`
maps them onto this checkout, the virtualenv running the tests and a temporary state directory,
so that a unit's own command line can be started here unchanged otherwise.
"""

from __future__ import annotations

import re
import secrets
import shlex
import socket
import sys
from pathlib import Path

from tests.support import ROOT

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "compliance.env.example"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

APP_DIR = "/opt/compliance"
VENV_BIN = "/opt/compliance/.venv/bin"
STATE_DIR = "/var/lib/compliance"
ENV_FILE = "/etc/compliance/compliance.env"
# systemd's PATH for system services; the units name every program by its full path anyway.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_NAME = r"[A-Z][A-Z0-9_]*"


def generated_secrets() -> dict[str, str]:
    """What an operator fills in where the example leaves the secrets empty."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ADDRESS_HASH_KEY": secrets.token_urlsafe(48),
        "UNSUBSCRIBE_TOKEN_KEYS": "1:" + secrets.token_urlsafe(48),
    }


def env_file(path: Path) -> dict[str, str]:
    """The variables an EnvironmentFile= sets: NAME=VALUE lines; '#' starts a comment."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, sep, value = line.partition("=")
        # Quoting and escapes mean something else to systemd than to a shell: the example uses
        # none, so what it says here is what systemd reads.
        assert sep and re.fullmatch(_NAME, name), f"{path.name}:{number}: not NAME=VALUE"
        assert not re.search(r"[\"'\\]", value), f"{path.name}:{number}: quoting or escapes"
        values[name] = value
    return values


def optional_names(path: Path) -> set[str]:
    """Variables the example shows commented out, as `#NAME=default`."""
    return set(re.findall(rf"^#({_NAME})=", path.read_text(), flags=re.MULTILINE))


def unit_directives(name: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every line of a unit file, continuation lines joined."""
    directives, section, pending = [], "", ""
    for raw in (UNITS / name).read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        directives.append((section, key.strip(), value.strip()))
    return directives


def directive(name: str, key: str) -> list[str]:
    return [v for _, k, v in unit_directives(name) if k == key]


def template_file(unit: str) -> str:
    """compliance-worker@optouts.service is read from compliance-worker@.service."""
    prefix, at, rest = unit.partition("@")
    return f"{prefix}@{rest[rest.index('.') :]}" if at else unit


def expand_specifiers(value: str, *, instance: str) -> str:
    """systemd's specifiers that the units use: %i and %I (instance), %H (host name), %%."""
    replacements = {"i": instance, "I": instance, "H": socket.gethostname(), "%": "%"}

    def replace(match: re.Match) -> str:
        letter = match.group(1)
        assert letter in replacements, f"specifier %{letter} is not handled by the tests"
        return replacements[letter]

    return re.sub(r"%(.)", replace, value)


def command_line(unit: str, env: dict[str, str]) -> list[str]:
    """The unit's ExecStart as systemd runs it: specifiers expanded, then `${NAME}` replaced by
    the variable's value as one word and a lone `$NAME` word by its value split at whitespace."""
    (line,) = directive(template_file(unit), "ExecStart")
    instance = unit.partition("@")[2].rpartition(".")[0]
    words = []
    for word in shlex.split(expand_specifiers(line, instance=instance)):
        lone = re.fullmatch(rf"\$({_NAME})", word)
        if lone:
            words.extend(env.get(lone.group(1), "").split())
        else:
            words.append(re.sub(rf"\$\{{({_NAME})\}}", lambda m: env.get(m.group(1), ""), word))
    return words


def unit_environment(unit: str, *, files: dict[str, Path], state_dir: Path) -> dict[str, str]:
    """The environment systemd gives the unit's process: its own, then Environment= lines, then
    its EnvironmentFile= files in order; `files` maps the production paths of the operator's
    files (ENV_FILE, a worker's own file) onto local ones."""
    name = template_file(unit)
    instance = unit.partition("@")[2].rpartition(".")[0]
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "HOME": STATE_DIR}
    for value in directive(name, "Environment"):
        key, _, val = expand_specifiers(value, instance=instance).partition("=")
        env[key] = val
    for value in directive(name, "EnvironmentFile"):
        optional = value.startswith("-")
        path = expand_specifiers(value.lstrip("-"), instance=instance)
        if path in files:
            env.update(env_file(files[path]))
        else:
            assert optional, f"{name} needs {path}, which the repository does not ship"
    env = {key: local(value, state_dir) for key, value in env.items()}
    for directory in directive(name, "RuntimeDirectory"):
        env["RUNTIME_DIRECTORY"] = str(state_dir / "run" / directory)
    return env


def local(value: str, state_dir: Path) -> str:
    """A production path in `value` mapped onto this checkout, its virtualenv and `state_dir`."""
    value = value.replace(VENV_BIN, str(Path(sys.executable).parent))
    value = value.replace(APP_DIR, str(ROOT))
    return value.replace(STATE_DIR, str(state_dir))
