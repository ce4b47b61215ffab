"""Prompt templates for the rubric generator and the judge: built-in data files or a user's file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rubric_arm.errors import InputError
from rubric_arm.formats import OutputFormat, build_format, format_names
from rubric_arm.types import Chat, Rubric

ROLE_FIELDS: dict[str, tuple[str, ...]] = {
    "generator": ("prompt",),
    "judge": ("prompt", "rubric", "response_a", "response_b"),
    # A pairwise judge without a rubric (the "direct judge" baseline).
    "direct": ("prompt", "response_a", "response_b"),
}
_PLACEHOLDER = re.compile(r"\{(prompt|rubric|response_a|response_b)\}")
_LOOKALIKE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,40})\}")
_YAML_KEYS = frozenset({"name", "role", "version", "system", "user", "grammar"})
_YAML_SUFFIXES = (".yaml", ".yml")


def _braced(names: Any) -> str:
    return ", ".join("{" + n + "}" for n in names)


def _placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


@dataclass(frozen=True)
class Template:
    """A chat prompt with literal {field} placeholders; `version` changes whenever the text does.

    `grammar` declares the output: a registered format name (`rubric`, `judge`, `judge-general`,
    `direct`, see rubric_arm.formats), EBNF text with a `root` rule, or None (free decoding only).
    """

    name: str
    role: str
    user: str
    system: str | None = None
    declared_version: str = "1"
    grammar: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLE_FIELDS:
            roles = sorted(ROLE_FIELDS)
            raise InputError(
                f"template {self.name!r}: role must be one of {roles}, got {self.role!r}"
            )
        if not isinstance(self.user, str) or not self.user.strip():
            raise InputError(f"template {self.name!r}: the user message is empty")
        if self.system is not None and not isinstance(self.system, str):
            raise InputError(f"template {self.name!r}: system must be a string")
        _check_role_fit(self.name, self.role, (self.system or "") + "\n" + self.user)
        if self.grammar is not None:
            if not isinstance(self.grammar, str) or not self.grammar.strip():
                raise InputError(f"template {self.name!r}: grammar must be a format name or EBNF")
            if "::=" not in self.grammar and self.grammar not in format_names():
                raise InputError(
                    f"template {self.name!r}: grammar {self.grammar!r} is neither a known format "
                    f"({', '.join(format_names())}) nor EBNF text with a root rule"
                )

    @property
    def version(self) -> str:
        """Name, declared version and a hash of the text (grammar included): a cache key that
        follows every edit."""
        body = f"{self.system or ''}\x00{self.user}".encode()
        if self.grammar is not None:
            body += b"\x00" + self.grammar.encode()
        return f"{self.name}@{self.declared_version}+{hashlib.sha256(body).hexdigest()[:10]}"

    def output_format(
        self, rubric: Rubric | None = None, settings: dict[str, Any] | None = None
    ) -> OutputFormat | None:
        """The grammar of this template's output (for `rubric` when the format is built per
        rubric), or None when the template declares none."""
        if self.grammar is None:
            return None
        if "::=" in self.grammar:
            return OutputFormat(f"{self.name}-grammar", self.grammar)
        return build_format(self.grammar, rubric, settings)

    @property
    def fields(self) -> tuple[str, ...]:
        """The placeholders this template fills, in canonical order."""
        return ROLE_FIELDS[self.role]

    def render(self, **fields: str) -> Chat:
        """Fill the placeholders in one pass, so braces inside the values are never touched."""
        missing = [f for f in self.fields if f not in fields]
        unknown = sorted(set(fields) - set(self.fields))
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing field(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown field(s) {', '.join(unknown)}")
            raise InputError(f"template {self.name!r}: {'; '.join(parts)}")
        for key, value in fields.items():
            if not isinstance(value, str):
                raise InputError(
                    f"template {self.name!r}: field {key!r} must be a string, "
                    f"got {type(value).__name__}"
                )

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: fields[m.group(1)], text)

        chat: Chat = []
        if self.system:
            chat.append({"role": "system", "content": fill(self.system)})
        chat.append({"role": "user", "content": fill(self.user)})
        return chat


def _check_role_fit(name: str, role: str, text: str) -> None:
    found = _placeholders(text)
    wanted = set(ROLE_FIELDS[role])
    if found == wanted:
        return
    problems = []
    if wanted - found:
        problems.append(f"lacks {_braced(sorted(wanted - found))}")
    if found - wanted:
        problems.append(
            f"has {_braced(sorted(found - wanted))}, which a {role} template cannot fill"
        )
    lookalikes = sorted(set(_LOOKALIKE.findall(text)) - set(ROLE_FIELDS["judge"]))
    hint = f" (unrecognised placeholders: {_braced(lookalikes)})" if lookalikes else ""
    raise InputError(
        f"template {name!r} ({role}) {' and '.join(problems)}{hint}; a {role} template "
        f"needs exactly {_braced(ROLE_FIELDS[role])}"
    )


def infer_role(text: str, name: str = "template") -> str:
    """Judge if the text has a response placeholder, generator if it has only {prompt}."""
    found = _placeholders(text)
    if found & {"response_a", "response_b"}:
        return "judge"  # a rubric-free "direct" template must declare its role
    if "prompt" in found:
        return "generator"
    raise InputError(
        f"template {name!r} has none of the placeholders {_braced(ROLE_FIELDS['judge'])}: "
        f"a generator template needs {{prompt}}, a judge template needs "
        f"{_braced(ROLE_FIELDS['judge'])}"
    )


def _from_mapping(data: Any, default_name: str, where: str) -> Template:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping with keys {sorted(_YAML_KEYS)}")
    unknown = sorted(set(map(str, data)) - _YAML_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_YAML_KEYS)}")
    user = data.get("user")
    if not isinstance(user, str):
        raise InputError(f"{where}: 'user' must be a string holding the user message")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise InputError(f"{where}: 'system' must be a string")
    name = str(data.get("name") or default_name)
    role = data.get("role") or infer_role((system or "") + "\n" + user, name)
    version = data.get("version")
    grammar = data.get("grammar")
    if grammar is not None and not isinstance(grammar, str):
        raise InputError(f"{where}: 'grammar' must be a format name or EBNF text")
    return Template(
        name, str(role), user, system, "1" if version is None else str(version), grammar
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"template file {path} is not UTF-8 text: {e}") from e
    except OSError as e:
        raise InputError(f"cannot read template file {path}: {e}") from e


def _load_yaml(text: str, default_name: str, where: str) -> Template:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError(f"{where}: invalid YAML: {e}") from e
    return _from_mapping(data, default_name, where)


def _load_file(path: Path) -> Template:
    text = _read(path)
    if path.suffix.lower() in _YAML_SUFFIXES:
        return _load_yaml(text, path.stem, f"template file {path}")
    if text.endswith("\n"):
        text = text[:-1]
    return Template(path.stem, infer_role(text, path.stem), text)


@lru_cache(maxsize=1)
def _builtin_names() -> tuple[str, ...]:
    folder = resources.files("rubric_arm.prompts")
    names = (p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return tuple(sorted(names))


def builtin_templates() -> list[str]:
    """Names of the templates shipped with the package."""
    return list(_builtin_names())


@cache
def _builtin(name: str) -> Template:
    text = resources.files("rubric_arm.prompts").joinpath(f"{name}.yaml").read_text("utf-8")
    template = _load_yaml(text, name, f"built-in template {name!r}")
    if template.name != name:
        raise InputError(f"built-in template file {name}.yaml declares name {template.name!r}")
    return template


def load_template(name_or_path: str) -> Template:
    """A built-in template by name, or a user file: YAML with the same keys, or plain user text."""
    if name_or_path in _builtin_names():
        return _builtin(name_or_path)
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise InputError(
            f"unknown template {name_or_path!r}: not a built-in "
            f"({', '.join(_builtin_names())}) and no such file"
        )
    return _load_file(path)
