"""Turn a raw YAML mapping into typed, frozen dataclasses, or fail with one line.

Every error names the dotted key, the bad value and what would be valid, so a typo in
`dvc exp run -S detector.trian.epochs=1` is reported as exactly that key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from doclab.errors import DoclabError


class ConfigError(DoclabError):
    """A params file that does not match the schema (message is one line)."""


def within(default: Any, low: Any = None, high: Any = None) -> Any:
    """A dataclass field with a default and an inclusive numeric range checked by `build`."""
    return dataclasses.field(default=default, metadata={"min": low, "max": high})


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp) if a is not type(None))
    if origin is list:
        return f"a list of {_describe(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _fail(key: str, value: Any, tp: Any, hint: str = "") -> ConfigError:
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    msg = f"{key}: got {shown}, expected {_describe(tp)}"
    if isinstance(value, str) and tp in (float, int):
        try:
            float(value)
        except ValueError:
            pass
        else:
            exponent = "e" in value.lower() and "." not in value
            hint = hint or ("YAML reads 1e-3 as a string: write 1.0e-3" if exponent else "write it without quotes")
    return ConfigError(msg + (f" ({hint})" if hint else ""))


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:  # `detector: null` (or a key left empty) would silently mean "all defaults"
            raise ConfigError(f"{key}: got null, expected a mapping of keys (delete the key for the defaults)")
        return build(tp, value, key)
    if origin is Literal:
        if value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}:
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in get_args(tp)], n=1)
        raise _fail(key, value, tp, f"did you mean {close[0]!r}?" if close else "")
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise _fail(key, value, tp)
    if origin is list:
        if not isinstance(value, list):
            raise _fail(key, value, tp)
        (item_tp,) = get_args(tp)
        return tuple(_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{key}: got {value!r}, expected a finite number")
        return float(value)
    if tp in (bool, int, str) and type(value) is tp:
        return value
    raise _fail(key, value, tp)


def _check_range(value: Any, meta: typing.Mapping[str, Any], key: str) -> None:
    low, high = meta.get("min"), meta.get("max")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        if (low is not None and item < low) or (high is not None and item > high):
            bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
            raise ConfigError(f"{key}: got {item!r}, expected a value in {bounds}")


def build(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, validating keys, types and ranges.

    Args:
        cls: a dataclass whose fields carry type hints; `field(metadata={"min": .., "max": ..})`
            adds a numeric range check.
        data: the raw mapping (from YAML); None means "all defaults".
        prefix: dotted key of this mapping, used in error messages.
    Returns:
        An instance of `cls`; lists become tuples so the result is hashable and immutable.
    Raises:
        ConfigError: one line naming the key, the bad value and the valid choices.
    """
    where = prefix or "params"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: got {data!r}, expected a mapping of keys")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1, cutoff=0.6)
            hint = f"did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else ""
            valid = ", ".join(fields)
            raise ConfigError(
                f"{prefix + '.' if prefix else ''}{name}: unknown key" + (f", {hint}" if hint else "")
                + f" (valid keys here: {valid})"
            )
    values = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required key is missing")
            continue
        values[name] = _convert(data[name], hints[name], key)
        _check_range(values[name], f.metadata, key)
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        check(prefix)
    return instance


def to_dict(instance: Any) -> dict:
    """Plain-dict view of a built config (tuples back to lists), for saving next to models."""
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(dataclasses.asdict(instance))
