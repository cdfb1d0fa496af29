"""Strict YAML for config, accounts and rule files: located values and typed readers that report, not raise.

``parse_yaml``/``load_yaml_file`` turn a document into plain ``dict``/``list`` values (``YMap``/``YList``
subclasses) that also remember where every key and value sits and how each plain scalar was written,
so YAML 1.1 traps (``no`` read as false, ``1:30`` read as 90) can be explained. Duplicate keys are
reported. ``Fields`` reads one mapping: each getter checks a type, reports into ``Problems`` and returns
the default on error; ``done()`` reports the keys nobody asked for, with a suggestion. Nothing stops at
the first error: a load lists them all, as ``file:line:col: [context: ]field: message``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader

T = TypeVar("T")

# --------------------------------------------------------------------------- locations and problems


@dataclass(frozen=True, slots=True)
class Mark:
    """Where something sits in a source. ``line``/``col`` are 1-based; 0 means unknown (flags, code)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Problem:
    mark: Mark
    field: str
    message: str
    context: str | None = None  # e.g. "rule 'cot-verbatim'" or "account 'acme'"

    def __str__(self) -> str:
        ctx = f"{self.context}: " if self.context else ""
        field = f"{self.field}: " if self.field else ""
        return f"{self.mark}: {ctx}{field}{self.message}"

    def format(self) -> str:
        return str(self)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "file": self.mark.file, "line": self.mark.line, "col": self.mark.col,
            "field": self.field, "message": self.message,
        }
        if self.context:
            d["context"] = self.context
        return d


class Problems:
    """Collects every problem of a load; report them all at once, sorted by position."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[Problem] = []

    def add(self, mark: Mark, field: str, message: str, *, context: str | None = None) -> None:
        self._items.append(Problem(mark, field, message, context))

    def extend(self, other: Iterable[Problem]) -> None:
        self._items.extend(other)

    def __iter__(self) -> Iterator[Problem]:
        return iter(sorted(self._items, key=lambda p: (p.mark.file, p.mark.line, p.mark.col)))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def lines(self) -> list[str]:
        return [str(p) for p in self]

    def as_json(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self]

    def __str__(self) -> str:
        return "\n".join(self.lines())


class ProblemsError(Exception):
    """Raised by loaders with every problem found; ``str()`` lists them one per line."""

    def __init__(self, problems: Problems, what: str = "invalid configuration") -> None:
        self.problems = problems
        n = len(problems)
        super().__init__(f"{what}: {n} problem{'s' if n != 1 else ''}\n{problems}")


# --------------------------------------------------------------------------- located values


class YMap(dict[str, Any]):
    """A YAML mapping: a plain dict that also knows where it, each key and each value sit.

    ``raw[key]`` is the text of a plain (unquoted) scalar value as written, for trap hints.
    """

    __slots__ = ("key_marks", "mark", "raw", "value_marks")

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}
        self.raw: dict[str, str] = {}

    def key_mark(self, key: str) -> Mark:
        return self.key_marks.get(key, self.mark)

    def value_mark(self, key: str) -> Mark:
        return self.value_marks.get(key, self.mark)


class YList(list[Any]):
    """A YAML sequence: a plain list that also knows where it and each item sit."""

    __slots__ = ("item_marks", "mark", "raw")

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []
        self.raw: list[str | None] = []

    def item_mark(self, i: int) -> Mark:
        return self.item_marks[i] if i < len(self.item_marks) else self.mark


def _mark(file: str, m: Any) -> Mark:
    return Mark(file, m.line + 1, m.column + 1) if m is not None else Mark(file)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_SCALARS = SafeConstructor()


class _Builder:
    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems
        self.stack: set[int] = set()

    def build(self, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode):
            fn = SafeConstructor.yaml_constructors.get(node.tag)
            if fn is None:
                self.problems.add(_mark(self.file, node.start_mark), path, f"unsupported YAML tag {node.tag}")
                return None
            return fn(_SCALARS, node)
        if id(node) in self.stack:
            self.problems.add(_mark(self.file, node.start_mark), path, "recursive YAML alias")
            return None
        self.stack.add(id(node))
        try:
            return self._map(node, path) if isinstance(node, MappingNode) else self._seq(node, path)
        finally:
            self.stack.discard(id(node))

    def _map(self, node: MappingNode, path: str) -> YMap:
        out = YMap(_mark(self.file, node.start_mark))
        for knode, vnode in node.value:
            km = _mark(self.file, knode.start_mark)
            if knode.tag == "tag:yaml.org,2002:merge":
                self.problems.add(km, path, "merge keys (<<) are not supported; repeat the keys")
                continue
            if not isinstance(knode, ScalarNode):
                self.problems.add(km, path, "keys must be plain strings")
                continue
            # The key as written: `no:` stays "no", `1:` stays "1" (PyYAML would give False and 1).
            key = knode.value
            kpath = _join(path, key)
            if key in out:
                first = out.key_marks[key]
                self.problems.add(km, kpath, f"duplicate key (first defined at line {first.line})")
                continue
            out[key] = self.build(vnode, kpath)
            out.key_marks[key] = km
            out.value_marks[key] = _mark(self.file, vnode.start_mark)
            if isinstance(vnode, ScalarNode) and not vnode.style:
                out.raw[key] = vnode.value
        return out

    def _seq(self, node: SequenceNode, path: str) -> YList:
        out = YList(_mark(self.file, node.start_mark))
        for i, item in enumerate(node.value):
            out.append(self.build(item, f"{path}[{i}]"))
            out.item_marks.append(_mark(self.file, item.start_mark))
            out.raw.append(item.value if isinstance(item, ScalarNode) and not item.style else None)
        return out


def parse_yaml(text: str | bytes, file: str, problems: Problems) -> Any:
    """One YAML document as located values; ``None`` if empty or unparseable (then a problem is added)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x)
        problems.add(_mark(file, mark), "", f"invalid YAML: {what}")
        return None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        problems.add(Mark(file), "", f"invalid YAML: {e}")
        return None
    if node is None:
        return None
    return _Builder(file, problems).build(node, "")


def load_yaml_file(path: str | Path, problems: Problems, *, name: str | None = None) -> Any:
    """Read and parse a file; ``name`` is how it appears in messages (default: the path as given)."""
    file = name or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        problems.add(Mark(file), "", f"cannot read: {e.strerror or e}")
        return None
    return parse_yaml(data, file, problems)


def locate(value: Any, file: str) -> Any:
    """Wrap plain values (from flags or code) as located values with unknown positions."""
    if isinstance(value, dict):
        out = YMap(Mark(file))
        for k, v in value.items():
            out[str(k)] = locate(v, file)
        return out
    if isinstance(value, list | tuple):
        seq = YList(Mark(file))
        seq.extend(locate(v, file) for v in value)
        return seq
    return value


def plain(value: Any) -> Any:
    """Strip locations: nested plain dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- converters


class Invalid(ValueError):
    """Raised by a converter; the reader turns it into a problem at the value's position."""


Converter = Callable[[Any, "str | None"], Any]  # (value, raw plain-scalar text or None) -> converted


def describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, int | float):
        return f"the number {v}"
    if isinstance(v, str):
        return f"'{v}'"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"a {type(v).__name__}"


def _trap(v: Any, raw: str | None) -> str | None:
    """Explain a YAML 1.1 surprise in an unquoted scalar, if that is what happened."""
    if raw is None:
        return None
    if isinstance(v, bool) and raw.lower() not in ("true", "false"):
        return f"YAML 1.1 reads the unquoted {raw} as the boolean {str(v).lower()}; quote it: \"{raw}\""
    if isinstance(v, int | float) and not isinstance(v, bool) and ":" in raw:
        return f"YAML 1.1 reads the unquoted {raw} as the base-60 number {v}; quote it"
    return None


def _expected(what: str, v: Any, raw: str | None) -> Invalid:
    hint = _trap(v, raw)
    return Invalid(f"expected {what}, got {describe(v)}" + (f" ({hint})" if hint else ""))


def to_str(v: Any, raw: str | None = None) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool | int | float):
        hint = _trap(v, raw) or f"quote it: \"{raw if raw is not None else v}\""
        raise Invalid(f"expected a string, got {describe(v)} ({hint})")
    raise _expected("a string", v, raw)


def to_int(v: Any, raw: str | None = None) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and not (raw and ":" in raw):
        return v
    raise _expected("an integer", v, raw)


def to_float(v: Any, raw: str | None = None) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool) and not (raw and ":" in raw):
        return float(v)
    raise _expected("a number", v, raw)


def to_bool(v: Any, raw: str | None = None) -> bool:
    if isinstance(v, bool):
        if raw is not None and raw.lower() not in ("true", "false"):
            raise Invalid(f"write true or false, not {raw} (YAML 1.1 reads {raw} as {str(v).lower()})")
        return v
    raise Invalid(f"expected true or false, got {describe(v)}")


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def to_duration(v: Any, raw: str | None = None) -> float:
    """``"250ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"1m30s"`` -> seconds; bare numbers refused."""
    if isinstance(v, str) and _DURATION.fullmatch(v):
        return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(v))
    if isinstance(v, int | float) and not isinstance(v, bool):
        if raw and ":" in raw:
            raise Invalid(
                f"YAML 1.1 reads the unquoted {raw} as the base-60 number {v}; "
                "write a duration with units, like '1m30s'"
            )
        raise Invalid(f"expected a duration like '30s', got the number {v} (add a unit: ms, s, m, h, d)")
    raise _expected("a duration like '30s'", v, raw)


_SIZE_UNITS = {
    "": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)


def to_size(v: Any, raw: str | None = None) -> int:
    """A byte size: an integer (bytes) or ``"512KB"``, ``"10MiB"``, ``"1GB"`` (KB = 1000, KiB = 1024)."""
    if isinstance(v, int) and not isinstance(v, bool) and not (raw and ":" in raw):
        if v < 0:
            raise Invalid(f"expected a size, got the negative number {v}")
        return v
    if isinstance(v, str):
        m = _SIZE.fullmatch(v.strip())
        if m:
            return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").upper()])
    raise _expected("a size like '10MiB' or '512KB'", v, raw)


def suggest(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def enum_of(choices: Sequence[str]) -> Converter:
    def to_enum(v: Any, raw: str | None = None) -> str:
        if isinstance(v, str) and v in choices:
            return v
        listed = ", ".join(choices)
        if isinstance(v, str):
            raise Invalid(f"expected one of {listed}, got '{v}'{suggest(v, choices)}")
        raise _expected(f"one of {listed}", v, raw)

    return to_enum


def to_cidr(v: Any, raw: str | None = None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(v, str):
        raise _expected("an IP network like '10.0.0.0/8'", v, raw)
    try:
        return ipaddress.ip_network(v, strict=True)
    except ValueError as e:
        raise Invalid(f"expected an IP network like '10.0.0.0/8', got '{v}' ({e})") from e


def to_url(v: Any, raw: str | None = None) -> str:
    """An absolute http(s) URL without query or fragment; a trailing slash is dropped."""
    if not isinstance(v, str):
        raise _expected("an http or https URL", v, raw)
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"expected an http or https URL like 'https://api.example.com', got '{v}'")
    try:
        _ = parts.port
    except ValueError as e:
        raise Invalid(f"invalid port in '{v}'") from e
    if parts.query or parts.fragment:
        raise Invalid(f"a base URL takes no query or fragment, got '{v}'")
    return v.rstrip("/")


# --------------------------------------------------------------------------- reading mappings


@dataclass(frozen=True, slots=True)
class At:
    """Where a value to parse sits: its mark, its dotted field path, an optional context (rule id)
    and the folder relative paths resolve against (``None`` when the value came from flags)."""

    mark: Mark
    field: str = ""
    context: str | None = None
    base_dir: Path | None = None


_NO_DEFAULT: Any = object()


class Fields:
    """Reads one mapping key by key. Getters report problems and return the default; nothing raises.

    Call ``done()`` last: every key no getter asked for is reported as unknown, with a suggestion.
    An explicit ``null`` gives ``None`` where the default is ``None`` (or ``nullable=True``), and is a
    problem otherwise.
    """

    __slots__ = ("at", "data", "problems", "seen")

    def __init__(self, data: YMap, problems: Problems, at: At) -> None:
        self.data = data
        self.problems = problems
        self.at = at
        self.seen: set[str] = set()

    @classmethod
    def of(cls, value: Any, at: At, problems: Problems) -> Fields:
        """A reader for ``value``; ``None`` reads as an empty mapping, a non-mapping is reported."""
        if isinstance(value, YMap):
            return cls(value, problems, at)
        if isinstance(value, dict):
            return cls(locate(value, at.mark.file), problems, at)
        if value is not None:
            problems.add(at.mark, at.field, f"expected a mapping, got {describe(value)}", context=at.context)
        return cls(YMap(at.mark), problems, at)

    def with_context(self, context: str) -> Fields:
        """The same reader, reporting as ``context: key: message`` (e.g. once a rule's id is known)."""
        f = Fields(self.data, self.problems, At(self.at.mark, "", context, self.at.base_dir))
        f.seen = self.seen
        return f

    # -- plumbing -------------------------------------------------------------------------------

    def field(self, key: str) -> str:
        return _join(self.at.field, key)

    def child(self, key: str, *, context: str | None = None) -> At:
        """The position of ``key``'s value, for nested parsers."""
        return At(self.data.value_mark(key), self.field(key), context or self.at.context, self.at.base_dir)

    def report(self, key: str | None, message: str, *, on_key: bool = False) -> None:
        """Add a problem about ``key`` (at its value, or its key with ``on_key``), or the mapping itself."""
        if key is None:
            self.problems.add(self.data.mark, self.at.field, message, context=self.at.context)
            return
        mark = self.data.key_mark(key) if on_key else self.data.value_mark(key)
        self.problems.add(mark, self.field(key), message, context=self.at.context)

    def has(self, key: str) -> bool:
        self.seen.add(key)
        return key in self.data

    def raw(self, key: str) -> Any:
        """The value as parsed (located), marking the key as known."""
        self.seen.add(key)
        return self.data.get(key)

    def get(
        self,
        key: str,
        conv: Converter,
        default: Any = None,
        *,
        required: bool = False,
        nullable: bool | None = None,
    ) -> Any:
        self.seen.add(key)
        if key not in self.data or (required and self.data[key] is None):
            if required:
                self.problems.add(self.data.mark if key not in self.data else self.data.value_mark(key),
                                  self.field(key), "is required", context=self.at.context)
            return default
        value = self.data[key]
        if value is None:
            if nullable if nullable is not None else default is None:
                return None
            self.report(key, f"must not be null (remove the key to use the default, {default!r})")
            return default
        try:
            return conv(value, self.data.raw.get(key))
        except Invalid as e:
            self.report(key, str(e))
            return default

    # -- typed getters --------------------------------------------------------------------------

    def string(self, key: str, default: Any = None, *, required: bool = False, nullable: bool | None = None,
               pattern: re.Pattern[str] | None = None, what: str = "") -> Any:
        """A string; with ``pattern``, one that matches it in full (``what`` names the expected form)."""
        v = self.get(key, to_str, default, required=required, nullable=nullable)
        given = self.data.get(key)
        if pattern is not None and isinstance(v, str) and v == given and not pattern.fullmatch(v):
            self.report(key, f"expected {what or 'a string matching ' + pattern.pattern}, got '{v}'")
            return default
        return v

    def integer(self, key: str, default: Any = None, *, required: bool = False,
                min: int | None = None, max: int | None = None) -> Any:
        return self._ranged(key, to_int, default, required, min, max)

    def number(self, key: str, default: Any = None, *, required: bool = False,
               min: float | None = None, max: float | None = None) -> Any:
        return self._ranged(key, to_float, default, required, min, max)

    def duration(self, key: str, default: Any = None, *, required: bool = False,
                 min: float | None = None, max: float | None = None) -> Any:
        return self._ranged(key, to_duration, default, required, min, max)

    def size(self, key: str, default: Any = None, *, required: bool = False,
             min: int | None = None, max: int | None = None) -> Any:
        return self._ranged(key, to_size, default, required, min, max)

    def _ranged(self, key: str, conv: Converter, default: Any, required: bool,
                lo: float | None, hi: float | None) -> Any:
        v = self.get(key, conv, default, required=required)
        if v is None or key not in self.data:
            return v
        if lo is not None and v < lo:
            self.report(key, f"must be at least {lo}, got {v}")
            return default
        if hi is not None and v > hi:
            self.report(key, f"must be at most {hi}, got {v}")
            return default
        return v

    def boolean(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        return self.get(key, to_bool, default, required=required)

    def enum(self, key: str, choices: Sequence[str], default: Any = None, *, required: bool = False,
             nullable: bool | None = None) -> Any:
        return self.get(key, enum_of(choices), default, required=required, nullable=nullable)

    def url(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        return self.get(key, to_url, default, required=required)

    def cidr(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        return self.get(key, to_cidr, default, required=required)

    def list_of(self, key: str, item: Converter, default: tuple[Any, ...] = (), *,
                required: bool = False) -> tuple[Any, ...]:
        """A list whose items all pass ``item``; bad items are reported one by one and left out."""
        seq = self.get(key, _as_list, default, required=required, nullable=False)
        if not isinstance(seq, YList):
            return seq if isinstance(seq, tuple) else tuple(seq)
        out = []
        for i, v in enumerate(seq):
            try:
                out.append(item(v, seq.raw[i] if i < len(seq.raw) else None))
            except Invalid as e:
                self.problems.add(seq.item_mark(i), f"{self.field(key)}[{i}]", str(e),
                                  context=self.at.context)
        return tuple(out)

    def str_map(self, key: str, value: Converter = to_str) -> dict[str, Any]:
        """A free-form mapping of names to values (e.g. extra headers)."""
        sub = self.get(key, _as_map, None, nullable=True)
        if sub is None:
            return {}
        out = {}
        for k, v in sub.items():
            try:
                out[k] = value(v, sub.raw.get(k))
            except Invalid as e:
                self.problems.add(sub.value_mark(k), _join(self.field(key), k), str(e),
                                  context=self.at.context)
        return out

    def map(self, key: str, *, context: str | None = None) -> Fields:
        """A reader for a nested mapping (absent or null reads as empty)."""
        self.seen.add(key)
        return Fields.of(self.data.get(key), self.child(key, context=context), self.problems)

    def maps(self, key: str, *, required: bool = False) -> list[Fields]:
        """Readers for a list of mappings; items that are not mappings are reported."""
        seq = self.get(key, _as_list, None, required=required, nullable=True)
        if seq is None:
            return []
        out = []
        for i, v in enumerate(seq):
            at = At(seq.item_mark(i), f"{self.field(key)}[{i}]", self.at.context, self.at.base_dir)
            if isinstance(v, dict):
                out.append(Fields.of(v, at, self.problems))
            else:
                self.problems.add(at.mark, at.field, f"expected a mapping, got {describe(v)}",
                                  context=self.at.context)
        return out

    def done(self, also_known: Iterable[str] = ()) -> None:
        """Report every key that no getter asked for (call after reading all fields)."""
        known = self.seen | set(also_known)
        for key in self.data:
            if key not in known:
                self.report(key, f"unknown key{suggest(key, sorted(known))}", on_key=True)


def _as_list(v: Any, raw: str | None = None) -> YList:
    if isinstance(v, YList):
        return v
    raise _expected("a list", v, raw)


def _as_map(v: Any, raw: str | None = None) -> YMap:
    if isinstance(v, YMap):
        return v
    raise _expected("a mapping", v, raw)
