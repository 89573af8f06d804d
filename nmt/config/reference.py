"""The configuration reference (`docs/config.md`), made from the schema: every key with its type,
default, range and meaning, group by group. `make docs` writes it; a test fails when the file
differs from what this makes now."""
from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, Iterator

from nmt.config import schema
from nmt.config.rules import DEPRECATED_KEYS

HEADER = """# Configuration reference

Generated from the schema (`nmt/config/schema.py`) by `make docs`; do not edit by hand. Every
program reads the same configuration: set a key on the command line (`train.lr=0.001`), pick a
group option (`model=lstm`, `vocab=word`, `data=files`, `decode=greedy`), or print the composed
configuration of a command with `--cfg job` (`python -m nmt.train --cfg job model=lstm`).
The conf/ files say only what a group option changes; the defaults are here.
"""


def type_name(hint: Any) -> str:
    """A field's type in words: enums as their choices, Optional as `| null`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " \\| ".join(m.value for m in hint)
    if origin is typing.Union:
        inner = [type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(inner) + (" \\| null" if type(None) in args else "")
    if origin in (list, typing.List):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin in (dict, typing.Dict):
        return f"map {type_name(args[0])} -> {type_name(args[1])}" if args else "map"
    if hint is Any:
        return "any"
    return getattr(hint, "__name__", str(hint))


def default_text(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if isinstance(value, enum.Enum):
        value = value.value
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value) \
        if isinstance(value, str) and value == "" else str(value)
    return f"`{text}`"


def groups(cls=schema.Config, prefix: str = "") -> Iterator[tuple[str, type]]:
    """(dotted name, dataclass) of the root and every group under it, depth first."""
    yield prefix.rstrip("."), cls
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default_factory):
            yield from groups(f.default_factory, f"{prefix}{f.name}.")


def group_table(name: str, cls: type) -> list[str]:
    hints = typing.get_type_hints(cls, vars(schema))
    rows = ["| key | type | default | range | meaning |", "| --- | --- | --- | --- | --- |"]
    old_spellings = {old for keys in DEPRECATED_KEYS.values() for old in keys} if not name else set()
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default_factory) or f.name in old_spellings:  # groups; the table below
            continue
        check = f.metadata.get("check")
        key = f"{name}.{f.name}" if name else f.name
        rows.append(f"| `{key}` | {type_name(hints[f.name])} | {default_text(f)} | "
                    f"{check.what if check else ''} | {f.metadata.get('doc', '')} |")
    return rows


def config_reference() -> str:
    """docs/config.md as it should read now."""
    out = [HEADER]
    for name, cls in groups():
        doc = " ".join((cls.__doc__ or "").split()) if cls.__doc__ and not cls.__doc__.startswith(cls.__name__) else ""
        out += [f"## `{name}`" if name else "## Top level", ""]
        if doc:
            out += [doc, ""]
        out += group_table(name, cls) + [""]
    out += ["## `data.files.SPLIT`", "", " ".join(schema.SplitFiles.__doc__.split()), ""]
    out += group_table("data.files.SPLIT", schema.SplitFiles) + [""]
    out += ["## Old spellings", "", "Still read for one release, with a note; each program maps its own:", "",
            "| program | old | new |", "| --- | --- | --- |"]
    out += [f"| {program} | `{old}=` | `{new}=` |" for program, keys in DEPRECATED_KEYS.items()
            for old, new in keys.items()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(config_reference(), end="")
