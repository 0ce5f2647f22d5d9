"""docs/policies.md and docs/sla.md against the policy file's real schema: every key the
file accepts is documented, every key the reference table lists exists, and every YAML
example in the two pages loads."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from policies.loader import parse_policy
from policies.model import Policy

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = {name: (DOCS / name).read_text(encoding="utf-8") for name in ("policies.md", "sla.md")}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds (``dict[str, X]``, ``list[X]``, ``X | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return origin is dict


def _schema_paths(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """``roles.<>.authority``-style paths of every key the file may hold, with its
    annotation (``<>`` a key the author chooses, ``[]`` an item of a list)."""
    paths: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{prefix}{key}"
        paths[path] = field.annotation
        for inner in _models(field.annotation):
            if _is_mapping(field.annotation):
                sub = f"{path}.<>."
            elif typing.get_origin(field.annotation) is list:
                sub = f"{path}[]."
            else:
                sub = f"{path}."
            paths.update(_schema_paths(inner, sub))
    return paths


SCHEMA = _schema_paths(Policy)


def _documented_names() -> set[str]:
    """Every name written in backticks on the two pages, split at dots, brackets and
    ``<...>`` placeholders: ``roles.<role>.limits.<kind>`` gives roles, limits."""
    names: set[str] = set()
    for page in PAGES.values():
        for code in re.findall(r"`([^`\n]+)`", page):
            code = re.sub(r"<[^>]*>", " ", code)
            names.update(re.findall(r"[a-z_]+", code))
    return names


@pytest.mark.parametrize("path", sorted(SCHEMA))
def test_every_key_the_policy_file_accepts_is_documented(path: str) -> None:
    """Each key's name is written in backticks on docs/policies.md or docs/sla.md (the
    reference tables and their prose)."""
    key = path.rsplit(".", 1)[-1].removesuffix("[]")
    assert key in _documented_names(), f"{path} is not documented"


def _table_keys() -> list[str]:
    """The first column of docs/policies.md's key table."""
    table = PAGES["policies.md"].split("## Keys", 1)[1].split("\n\n", 2)[1]
    return [m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE)]


def test_the_key_table_lists_the_top_level_keys() -> None:
    top = {path for path in SCHEMA if "." not in path}
    listed = {key.split(".", 1)[0] for key in _table_keys()}
    assert top == listed


@pytest.mark.parametrize("key", _table_keys())
def test_every_key_the_reference_table_lists_exists(key: str) -> None:
    path = re.sub(r"<[^>]*>", "<>", key)
    if path not in SCHEMA:  # ``limits.<kind>``: an entry of a mapping of plain values
        while path.endswith(".<>"):
            path = path.removesuffix(".<>")
        assert path in SCHEMA, f"docs/policies.md lists {key}, which the policy file lacks"
        assert _is_mapping(SCHEMA[path]), f"docs/policies.md lists {key}: {path} has no entries"


def _yaml_blocks(page: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", PAGES[page], flags=re.DOTALL)


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] += value
        else:
            into[key] = value


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_yaml_examples_in_the_docs_load(page: str) -> None:
    """A whole file shown (one with a ``name``) loads as it is; the snippets, put
    together under a name, version and currency, are a valid policy: no example shows a
    key, value or combination the loader refuses."""
    blocks = _yaml_blocks(page)
    assert len(blocks) == PAGES[page].count("```yaml") > 0
    document: dict[str, Any] = {"name": "Snippets", "version": "1", "currency": "EUR"}
    for block in blocks:
        if "name" in yaml.safe_load(block):
            assert parse_policy(block, file=f"docs/{page}").name
        else:
            _merge(document, yaml.safe_load(block))
    policy = parse_policy(yaml.safe_dump(document, sort_keys=False), file=f"docs/{page}")
    assert policy.name == "Snippets"


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGES[page], flags=re.DOTALL)


@pytest.mark.parametrize(
    ("page", "index"),
    [(page, index) for page in sorted(PAGES) for index in range(len(_python_blocks(page)))],
)
def test_the_python_examples_in_the_docs_run_as_written(page: str, index: int) -> None:
    """Regression (decision 0058): docs/policies.md's first snippet used ``Engine`` and
    ``store`` it never defined. Each block runs on its own, from its own imports."""
    namespace: dict[str, Any] = {}
    exec(compile(_python_blocks(page)[index], f"docs/{page}", "exec"), namespace)
    if "engine" in namespace:  # an engine made under the policy the block loaded
        assert namespace["engine"].policy is namespace["policy"]


def test_policies_md_shows_python_to_load_a_policy() -> None:
    assert _python_blocks("policies.md")
