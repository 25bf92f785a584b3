"""The result's dataclasses as JSON and back, field by field by their type hints: no objects, no code, no pickles."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

from dissect_core.errors import DissectError

T = TypeVar("T")


def to_json(value: Any) -> Any:
    """Return a dataclass (or a list, tuple or dict of them) as JSON values: tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {spec.name: to_json(getattr(value, spec.name)) for spec in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    return value


def from_json(kind: type[T], value: Any, where: str, **given: Any) -> T:
    """Return `value` (JSON) as a `kind` dataclass, with the fields in `given` taken as they are (e.g. tensors);
    raise DissectError naming `where` when it does not fit."""
    if not isinstance(value, dict):
        raise DissectError(f"{where} must be a JSON object, not {type(value).__name__}")
    hints = _hints(typing.cast(Any, kind))
    names = {spec.name for spec in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(value) - names)
    if unknown:
        raise DissectError(f"{where} has unknown field(s) {', '.join(unknown)}")
    values = {name: _decode(hints[name], item, f"{where}.{name}") for name, item in value.items() if name not in given}
    try:
        return kind(**values, **given)
    except TypeError as error:  # a required field missing
        raise DissectError(f"{where} lacks a field ({error})") from None


@functools.cache
def _hints(kind: Any) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _decode(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        options = [argument for argument in arguments if argument is not type(None)]
        if len(options) == 1:
            return _decode(options[0], value, where)
        for option in options:
            try:
                return _decode(option, value, where)
            except DissectError:
                continue
        raise DissectError(f"{where} is {value!r}, which is none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value, where)  # type: ignore[arg-type]
    if origin is typing.Literal:
        if value not in arguments:
            raise DissectError(f"{where} is {value!r}; it must be one of {', '.join(map(repr, arguments))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise DissectError(f"{where} must be a JSON list, not {type(value).__name__}")
        if origin is tuple and (len(arguments) != 2 or arguments[1] is not Ellipsis):
            if len(value) != len(arguments):
                raise DissectError(f"{where} must have {len(arguments)} items, not {len(value)}")
            return tuple(
                _decode(argument, item, f"{where}[{i}]")
                for i, (argument, item) in enumerate(zip(arguments, value, strict=True))
            )
        items = [_decode(arguments[0], item, f"{where}[{i}]") for i, item in enumerate(value)] if arguments else value
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise DissectError(f"{where} must be a JSON object, not {type(value).__name__}")
        return (
            dict(value)
            if not arguments
            else {key: _decode(arguments[1], item, f"{where}.{key}") for key, item in value.items()}
        )
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DissectError(f"{where} must be a number, not {value!r}")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise DissectError(f"{where} must be {hint.__name__}, not {value!r}")
        return value
    raise DissectError(f"{where} has a type the saved format does not hold ({hint})")
