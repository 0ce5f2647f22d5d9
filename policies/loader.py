"""Loading policy files (YAML or TOML) safely, with every problem located.

YAML is read with a YAML 1.2 "core" resolver: only ``true``/``false`` are booleans, so a
key or value like ``no``, ``off`` or ``on`` stays a string; dates stay strings; and
decimal numbers become ``Decimal`` exactly as written (``40.10`` is ``Decimal("40.10")``,
never a binary float). Duplicate keys are refused. TOML is read with ``tomllib`` and
``parse_float=Decimal``. Every error is a ``PolicyFileError`` naming the file and, for
each problem, its location (dotted path, and the line for YAML).
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from policies.errors import NoBundledPolicy, PolicyFileError, Problem
from policies.model import Policy
from policies.types import LocatedError

Location = tuple[str | int, ...]


class _CoreLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and no duplicate keys."""


_CoreLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
        "-+.0123456789",
    ),
):
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node))
    try:
        return Decimal(text)
    except InvalidOperation:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a number", node.start_mark
        ) from None


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    return int(str(loader.construct_scalar(node)))


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | bool | Decimal) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_CoreLoader.add_constructor("tag:yaml.org,2002:float", _decimal)
_CoreLoader.add_constructor("tag:yaml.org,2002:int", _int)
_CoreLoader.add_constructor("tag:yaml.org,2002:map", _mapping)


def _lines(
    node: yaml.Node, path: Location, out: dict[Location, int], seen: set[int] | None = None
) -> None:
    """Record the line of every value in the composed YAML tree, by path. A collection
    met again through an alias is not walked again (aliases of aliases would otherwise
    be walked once per path, exponentially): its values are located at the alias."""
    out[path] = node.start_mark.line + 1
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            _lines(value_node, (*path, key), out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out, seen)


def _at(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(exc: yaml.MarkedYAMLError) -> Problem:
    """Located where the construct PyYAML was reading starts (an unclosed ``[``, ``{`` or
    quote is noticed only at the end of the file), except a block collection: its start
    (often line 1) says less than the problem's place. The other place is in the text."""
    context, problem = exc.context_mark, exc.problem_mark
    use_context = context is not None and not str(exc.context).startswith("while parsing a block")
    mark = context if use_context else problem or context
    parts = []
    if exc.context:
        parts.append(
            str(exc.context) + (f" ({_at(context)})" if context and not use_context else "")
        )
    if exc.problem:
        parts.append(str(exc.problem) + (f" at {_at(problem)}" if problem and use_context else ""))
    return Problem(_at(mark) if mark else "", f"not valid YAML: {': '.join(parts)}")


def _read_yaml(text: str, file: str) -> tuple[Any, dict[Location, int]]:
    loader: _CoreLoader | None = None
    try:
        loader = _CoreLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Location, int] = {}
        _lines(node, (), lines)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        raise PolicyFileError(file, [_yaml_problem(exc)]) from None
    except yaml.reader.ReaderError as exc:
        raise PolicyFileError(
            file, [Problem(f"character {exc.position + 1}", f"not valid YAML: {exc.reason}")]
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise PolicyFileError(file, [Problem("", f"not valid YAML: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _read_toml(text: str, file: str) -> Any:
    try:
        # A byte order mark (Windows editors write one) is not TOML; YAML skips it too.
        return tomllib.loads(text.removeprefix("\ufeff"), parse_float=Decimal)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as exc:
        raise PolicyFileError(file, [Problem("", f"not valid TOML: {exc}")]) from None


def format_location(loc: Location) -> str:
    """``("limits", "agent", "refund")`` as ``limits.agent.refund``; indexes as ``[2]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _located(loc: Location, message: str, lines: Mapping[Location, int]) -> Problem:
    where = format_location(loc) or "(top level)"
    for size in range(len(loc), -1, -1):
        if loc[:size] in lines:
            where += f" (line {lines[loc[:size]]})"
            break
    return Problem(where, message)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model ``annotation`` is (``X`` or ``X | None``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (model := _model_of(arg)) is not None:
                return model
    return None


def _item_of(annotation: Any) -> Any:
    """What a mapping's values or a list's items are (``X | None`` looked through)."""
    origin = typing.get_origin(annotation)
    if origin is dict:
        return typing.get_args(annotation)[1]
    if origin is list:
        return typing.get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _item_of(arg)
    return None


def _keys_at(loc: Location) -> list[str]:
    """The keys the policy file takes at ``loc`` (a section, a list item, an entry under a
    name the author chose, or a mapping whose keys are a fixed set: ``playbooks``, a
    calendar's ``hours``), in the schema's order; empty if there is no such list."""
    annotation: Any = Policy
    for part in loc:
        model = _model_of(annotation)
        if model is not None:
            fields = {(f.alias or n): f for n, f in model.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[str(part)].annotation
        else:
            annotation = _item_of(annotation)
    model = _model_of(annotation)
    if model is not None:
        return [f.alias or n for n, f in model.model_fields.items()]
    key = _key_of(annotation)
    return [str(k) for k in typing.get_args(key)] if typing.get_origin(key) is Literal else []


def _key_of(annotation: Any) -> Any:
    """What a mapping's keys are (``X | None`` looked through); None if not a mapping."""
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (key := _key_of(arg)) is not None:
                return key
    return None


def _unknown_key(loc: Location) -> str:
    """``unknown key 'witin' (did you mean 'within'?); the keys here are: ...``."""
    key = str(loc[-1])
    keys = _keys_at(loc[:-1])
    close = difflib.get_close_matches(key, keys, n=1)
    message = f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return message + (f"; the keys here are: {', '.join(keys)}" if keys else "")


def _pydantic_part(part: str | int) -> bool:
    return isinstance(part, str) and "[" in part


def _problems(exc: ValidationError, lines: Mapping[Location, int]) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        raw = error["loc"]
        # pydantic's own parts (``[key]``, ``function-after[...]``) left out; the last part
        # of an unknown key is the author's key, brackets and all (``roles[agent]``).
        unknown = error["type"] == "extra_forbidden" and bool(raw)
        loc = tuple(p for p in raw[:-1] if not _pydantic_part(p))
        loc += (raw[-1],) if unknown else tuple(p for p in raw[-1:] if not _pydantic_part(p))
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, LocatedError):
            problems.extend(_located((*loc, *where), msg, lines) for where, msg in cause.problems)
            continue
        if unknown or (error["type"] == "literal_error" and raw[-1:] == ("[key]",) and loc):
            # a key no section takes, or a name from a fixed set (``playbooks.meak``)
            problems.append(_located(loc, _unknown_key(loc), lines))
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(_located(loc, message, lines))
    return problems


def parse_policy(text: str, *, file: str = "<policy>", fmt: str | None = None) -> Policy:
    """Validate policy ``text`` (``fmt`` ``"yaml"`` or ``"toml"``; guessed from ``file``
    if omitted). Raises ``PolicyFileError`` listing every problem found."""
    kind = fmt or ("toml" if file.endswith(".toml") else "yaml")
    if kind not in ("yaml", "toml"):
        raise PolicyFileError(file, [Problem("", f"unknown format {kind!r}: use yaml or toml")])
    lines: dict[Location, int] = {}
    if kind == "toml":
        data = _read_toml(text, file)
    else:
        data, lines = _read_yaml(text, file)
    if data is None or data == {}:
        raise PolicyFileError(
            file,
            [
                Problem(
                    "(top level)",
                    "the file is empty: a policy file must be a mapping of keys to values, "
                    "with at least name, version and currency",
                )
            ],
        )
    if not isinstance(data, dict):
        raise PolicyFileError(
            file, [Problem("(top level)", "a policy file must be a mapping of keys to values")]
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(file, _problems(exc, lines)) from None
    except (ValueError, ArithmeticError, RecursionError) as exc:
        raise PolicyFileError(file, [Problem("", str(exc))]) from None


def read_text(path: str | Path) -> tuple[str, str]:
    """``(file name, its UTF-8 text)``; a file that cannot be read is a ``PolicyFileError``."""
    file = str(path)
    try:
        return file, Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(
            file, [Problem("", f"cannot read the file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise PolicyFileError(file, [Problem("", f"not UTF-8 text: {exc.reason}")]) from None


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file (``.yaml``/``.yml`` or ``.toml``)."""
    file, text = read_text(path)
    return parse_policy(text, file=file)


BUNDLED = Path(__file__).resolve().parent / "bundled"


def bundled_names() -> list[str]:
    """The names of the policies shipped with complaintflow."""
    return sorted({p.name.split(".")[0] for p in BUNDLED.glob("*.*") if ".cases" not in p.name})


def bundled_path(name: str, *, cases: bool = False) -> Path:
    """The file of the bundled policy ``name`` or, with ``cases``, of the expected
    decisions shipped beside it (for ``complaintflow policy test``)."""
    known = bundled_names()
    if name in known:
        for suffix in (".cases.yaml",) if cases else (".yaml", ".toml"):
            if (BUNDLED / f"{name}{suffix}").exists():
                return BUNDLED / f"{name}{suffix}"
    raise NoBundledPolicy(
        name, not_bundled(name, cases=cases), kind="cases file" if cases else "policy file"
    )


def not_bundled(name: str, *, cases: bool = False) -> str:
    """What to say of ``name`` when no bundled policy (with ``cases``, no cases file
    shipped beside one) has it: ``there is no bundled policy called 'retial' (did you
    mean 'retail'?); the bundled policies are: fca-financial, retail, saas``. The library
    and the command line say it in these words (decision 0063)."""
    known = bundled_names()
    close = difflib.get_close_matches(name, known, n=1)
    mean = f" (did you mean {close[0]!r}?)" if close else ""
    what, these = ("cases file", "bundled ones") if cases else ("policy", "bundled policies")
    return f"there is no bundled {what} called {name!r}{mean}; the {these} are: {', '.join(known)}"


def bundled_policy(name: str) -> Policy:
    """A policy shipped with complaintflow: ``retail``, ``saas`` or ``fca-financial``."""
    return load_policy(bundled_path(name))
