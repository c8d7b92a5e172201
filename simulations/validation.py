"""Declared shapes of JSON input: HTTP bodies and websocket messages.

A body or message is declared once, out of fields that each say what they accept:
``Scalar`` wraps an engine-style ``Param`` (typed, bounded), ``Text``, ``Ref`` and
``Among`` cover the rest of the scalars, ``Object`` is a set of named fields (an
undeclared field is refused), ``Tagged`` picks the declaration by a ``type`` field,
and the ``Engine*``, ``DeclaredName``, ``ParamValue`` and ``CommandArgs`` fields hand
over to the engine's own declarations. ``validate`` returns the input normalised, or raises
``EngineError(field, message)``: the field is dotted when nested (``params.capacity``)
and the message says what the field accepts.

``json_object`` decodes the JSON text itself, refusing what is too large, not an
object or nested deeper than any declaration goes; ``json_body`` also refuses an HTTP
body not sent as JSON (``MediaTypeError``, a 415). No error quotes back more than
``ECHO`` characters of what it was sent.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .engines import get_engine, kinds
from .engines.base import EngineError, Param
from .runs.constants import CONTROL_ACTIONS, MAX_SEED, SPEEDS

Env = Mapping[str, Any]

MAX_BODY = 16_384  # bytes of an HTTP body; the largest real one is under 2 KB
MAX_DEPTH = 8  # levels of nesting; no declaration goes deeper than 2
ECHO = 80  # characters of a value that an error quotes back
JSON_TYPE = "application/json"

# JSON strings, so that brackets inside them are not counted as nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
_SLUG = re.compile(r"[-a-zA-Z0-9_]*")
# The Python types a JSON value of each ``Param`` type decodes to.
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int,
    "float": (int, float),
    "bool": bool,
    "choice": str,
}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind_of(value: Any) -> str:
    """Name a JSON value's kind, for messages that must not echo a large value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def shorten(text: str) -> str:
    """Return ``text`` cut to ``ECHO`` characters, saying how long it was."""
    if len(text) <= ECHO:
        return text
    return f"{text[:ECHO]}... ({len(text)} characters)"


class MediaTypeError(EngineError):
    """An HTTP body not sent as JSON: answered with 415 Unsupported Media Type."""


class Spec:
    """What one field accepts. Subclasses set ``name`` and implement ``check``."""

    name: str

    def allowed(self, env: Env) -> str:
        """Describe the accepted values in words; ``env`` holds the fields before."""
        raise NotImplementedError

    def check(self, value: Any, path: str, env: Env) -> Any:
        """Return ``value`` (never None) normalised, or raise EngineError at ``path``."""
        raise NotImplementedError

    def absent(self, path: str, env: Env) -> Any:
        """Return the value of an optional field left out or sent as null."""
        return None

    def _refuse(self, value: Any, path: str, env: Env) -> EngineError:
        return EngineError(
            path, f"{self.name} must be {self.allowed(env)}; got {value!r}"
        )


@dataclass(frozen=True)
class Scalar(Spec):
    """A JSON value of a ``Param``'s type, within its bounds; absent, its default.

    JSON types are strict here (``"5"`` is not an integer, ``true`` is not 1); only
    an engine's own parameters take strings too, as its forms and CLI send them.
    """

    param: Param

    @property
    def name(self) -> str:
        return self.param.name

    def allowed(self, env: Env) -> str:
        return self.param.allowed()

    def check(self, value: Any, path: str, env: Env) -> Any:
        expected = _JSON_TYPES[self.param.type]
        if isinstance(value, bool) != (self.param.type == "bool") or not isinstance(
            value, expected
        ):
            raise self._refuse(value, path, env)
        try:
            return self.param.coerce(value)
        except EngineError as exc:
            raise EngineError(path, exc.message) from None

    def absent(self, path: str, env: Env) -> Any:
        return self.param.default


@dataclass(frozen=True)
class Text(Spec):
    """A string of at most ``max_length`` characters; with ``slug``, a slug or ""."""

    name: str
    max_length: int
    slug: bool = False
    default: str = ""

    def allowed(self, env: Env) -> str:
        what = "a slug (letters, digits, - and _)" if self.slug else "a string"
        return f"{what} of at most {self.max_length} characters"

    def check(self, value: Any, path: str, env: Env) -> Any:
        if (
            not isinstance(value, str)
            or len(value) > self.max_length
            or (self.slug and not _SLUG.fullmatch(value))
        ):
            raise self._refuse(value, path, env)
        return value

    def absent(self, path: str, env: Env) -> Any:
        return self.default


@dataclass(frozen=True)
class Ref(Spec):
    """A value the client chooses and the server hands back: a string or a number."""

    name: str
    max_length: int = 100

    def allowed(self, env: Env) -> str:
        return f"a string of at most {self.max_length} characters or a number"

    def check(self, value: Any, path: str, env: Env) -> Any:
        text = isinstance(value, str) and len(value) <= self.max_length
        number = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
        )
        if not (text or number):
            raise self._refuse(value, path, env)
        return value


@dataclass(frozen=True)
class Among(Spec):
    """One of a few numbers (a speed, a choice's index)."""

    name: str
    values: tuple[float, ...]

    def allowed(self, env: Env) -> str:
        return "one of " + ", ".join(map(_fmt, self.values))

    def check(self, value: Any, path: str, env: Env) -> Any:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value not in self.values
        ):
            raise self._refuse(value, path, env)
        return self.values[self.values.index(value)]


@dataclass(frozen=True)
class Const(Spec):
    """A field that must hold exactly ``value`` (a message's type)."""

    name: str
    value: str

    def allowed(self, env: Env) -> str:
        return repr(self.value)

    def check(self, value: Any, path: str, env: Env) -> Any:
        if value != self.value:
            raise self._refuse(value, path, env)
        return value


@dataclass(frozen=True)
class EngineKind(Spec):
    """The kind of one of the registered engines."""

    name: str

    def allowed(self, env: Env) -> str:
        return "one of " + ", ".join(kinds())

    def check(self, value: Any, path: str, env: Env) -> Any:
        if not isinstance(value, str):
            raise self._refuse(value, path, env)
        try:
            get_engine(value)
        except EngineError as exc:
            raise EngineError(path, exc.message) from None
        return value


@dataclass(frozen=True)
class EngineParams(Spec):
    """An object of parameters of the engine named by ``env["kind"]``, checked by it.

    Every parameter comes back, defaults filled in; errors name ``<path>.<param>``.
    """

    name: str

    def allowed(self, env: Env) -> str:
        engine = get_engine(env["kind"])
        names = ", ".join(p.name for p in engine.params) or "none"
        return f"an object of {engine.kind}'s parameters and their values ({names})"

    def check(self, value: Any, path: str, env: Env) -> Any:
        if not isinstance(value, dict):
            raise EngineError(
                path, f"{self.name} must be {self.allowed(env)}; got {_kind_of(value)}"
            )
        try:
            return get_engine(env["kind"]).validate_params(value)
        except EngineError as exc:
            raise EngineError(_join(path, exc.field), exc.message) from None

    def absent(self, path: str, env: Env) -> Any:
        return self.check({}, path, env)


@dataclass(frozen=True)
class DeclaredName(Spec):
    """The name of one of the run's engine's parameters or commands (``env["kind"]``).

    As in the engine's own errors, an unknown name is the field named.
    """

    name: str
    of: str  # "param" or "command"

    def allowed(self, env: Env) -> str:
        engine = get_engine(env["kind"])
        declared = engine.params if self.of == "param" else engine.commands
        names = ", ".join(d.name for d in declared) or "none"
        what = "parameters" if self.of == "param" else "commands"
        return f"the name of one of {engine.kind}'s {what}: {names}"

    def check(self, value: Any, path: str, env: Env) -> Any:
        if not isinstance(value, str):
            raise self._refuse(value, path, env)
        getattr(get_engine(env["kind"]), self.of)(value)  # raises, naming the known
        return value


@dataclass(frozen=True)
class ParamValue(Spec):
    """A value for the parameter named by the field ``of``, checked by the engine.

    Errors name the parameter, as the engine's own do.
    """

    name: str
    of: str

    def _param(self, env: Env) -> Param:
        return get_engine(env["kind"]).param(env[self.of])

    def allowed(self, env: Env) -> str:
        return self._param(env).allowed()

    def check(self, value: Any, path: str, env: Env) -> Any:
        return self._param(env).coerce(value)


@dataclass(frozen=True)
class CommandArgs(Spec):
    """An object of arguments of the command named by the field ``of``.

    Defaults are filled in; errors name ``<command>.<argument>``, as the engine's do.
    """

    name: str
    of: str

    def allowed(self, env: Env) -> str:
        command = get_engine(env["kind"]).command(env[self.of])
        names = ", ".join(a.name for a in command.args) or "none"
        return f"an object of {command.name}'s arguments and their values ({names})"

    def check(self, value: Any, path: str, env: Env) -> Any:
        if not isinstance(value, dict):
            raise EngineError(
                path, f"{self.name} must be {self.allowed(env)}; got {_kind_of(value)}"
            )
        return get_engine(env["kind"]).command(env[self.of]).coerce_args(value)

    def absent(self, path: str, env: Env) -> Any:
        return self.check({}, path, env)


@dataclass(frozen=True)
class Object(Spec):
    """A JSON object of the declared ``fields``, checked in order.

    A field left out or sent as null takes its default, unless it is ``required``;
    a field not declared is refused, naming the declared ones. Each field sees the
    ones before it, normalised (the engine ``params`` need the ``kind``).
    """

    name: str
    fields: tuple[Spec, ...]
    required: tuple[str, ...] = ()
    label: str = ""  # how messages speak of the object: "the request body"

    def allowed(self, env: Env) -> str:
        return "an object with the fields " + ", ".join(f.name for f in self.fields)

    def check(self, value: Any, path: str, env: Env) -> Any:
        label = self.label or path or self.name
        if not isinstance(value, dict):
            raise EngineError(
                path or self.name,
                f"{label} must be a JSON object; got {_kind_of(value)}",
            )
        names = [f.name for f in self.fields]
        for key in value:
            if key not in names:
                raise EngineError(
                    _join(path, key),
                    f"{label} has no field {key!r}; its fields: " + ", ".join(names),
                )
        scope = dict(env)
        out: dict[str, Any] = {}
        for spec in self.fields:
            where = _join(path, spec.name)
            raw = value.get(spec.name)
            if raw is not None:
                out[spec.name] = spec.check(raw, where, scope)
            elif spec.name in self.required:
                raise EngineError(
                    where, f"{label} needs {spec.name}: {spec.allowed(scope)}"
                )
            else:
                out[spec.name] = spec.absent(where, scope)
            scope[spec.name] = out[spec.name]
        return out


@dataclass(frozen=True)
class Tagged(Spec):
    """A JSON object whose ``tag`` field names the variant (an ``Object``) it follows."""

    name: str
    tag: str
    variants: tuple[Object, ...]

    def allowed(self, env: Env) -> str:
        return f"a JSON object with a {self.tag}: one of " + ", ".join(
            v.name for v in self.variants
        )

    def only(self, *names: str) -> Tagged:
        """Return the same declaration limited to the variants ``names``."""
        return Tagged(
            self.name, self.tag, tuple(v for v in self.variants if v.name in names)
        )

    def check(self, value: Any, path: str, env: Env) -> Any:
        if not isinstance(value, dict):
            raise EngineError(
                path or self.name,
                f"a {self.name} must be {self.allowed(env)}; got {_kind_of(value)}",
            )
        tag = value.get(self.tag)
        variant = next((v for v in self.variants if v.name == tag), None)
        if variant is None:
            types = ", ".join(v.name for v in self.variants)
            problem = (
                f"a {self.name} needs a {self.tag}"
                if tag is None
                else f"unknown {self.name} {self.tag} {tag!r}"
            )
            raise EngineError(_join(path, self.tag), f"{problem}; {self.tag}s: {types}")
        return variant.check(value, path, env)


def validate(spec: Spec, value: Any, **env: Any) -> Any:
    """Return ``value`` checked against ``spec`` and normalised, or raise EngineError.

    ``env`` gives what the declaration needs from outside the value, such as the
    ``kind`` of the run a message is for.
    """
    try:
        return spec.check(value, "", env)
    except EngineError as exc:
        raise _cut_short(exc, value) from None


def _long_parts(value: Any, found: list[Any]) -> None:
    """Collect the parts of a decoded JSON value too long to quote back whole."""
    if len(repr(value)) > ECHO:
        found.append(value)
    if isinstance(value, dict):
        found.extend(key for key in value if len(repr(key)) > ECHO)
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            _long_parts(item, found)


def _cut_short(exc: EngineError, value: Any) -> EngineError:
    """Return ``exc`` with every long part of ``value`` it quotes cut short.

    Messages, the engines' too, quote a value as its ``repr``, and a field names a
    key as it is: outer parts are cut first, so what they hold goes with them.
    """
    parts: list[Any] = []
    _long_parts(value, parts)
    if not parts:
        return exc
    field, message = exc.field, exc.message
    for part in sorted(parts, key=lambda p: len(repr(p)), reverse=True):
        if isinstance(part, str):
            quoted = f"{part[:ECHO]!r}... ({len(part)} characters)"
            field = field.replace(part, shorten(part))
        else:
            quoted = shorten(repr(part))
        message = message.replace(repr(part), quoted)
    return EngineError(field, message)


# Decoding ------------------------------------------------------------------


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(
            f"{shorten(text)} is out of range: JSON numbers must be finite"
        )
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _deeper_than(text: str, limit: int) -> bool:
    # Counting brackets outside strings, before parsing, keeps a hostile nesting
    # from ever reaching the recursive parser.
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def json_object(
    data: str | bytes | None,
    *,
    field: str = "body",
    what: str = "the request body",
    limit: int = MAX_BODY,
) -> dict[str, Any]:
    """Return the JSON object in ``data``, or raise EngineError(field, why not).

    Refused: anything but text, more than ``limit`` bytes, text that is not JSON
    (non-finite numbers included), nesting deeper than ``MAX_DEPTH``, and any JSON
    value but an object.
    """
    if isinstance(data, bytes):
        size = len(data)
    elif isinstance(data, str):
        size = len(data.encode("utf-8", "replace"))
    else:
        raise EngineError(field, f"{what} must be a JSON object sent as text")
    if size > limit:
        raise _too_large(field, what, limit, str(size))
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise EngineError(
            field, f"{what} must be a JSON object; it is not valid UTF-8 text"
        ) from None
    if _deeper_than(text, MAX_DEPTH):
        raise EngineError(
            field,
            f"{what} must be a JSON object nested at most {MAX_DEPTH} levels deep",
        )
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except ValueError as exc:
        raise EngineError(
            field, f"{what} must be a JSON object; it is not valid JSON ({exc})"
        ) from None
    if not isinstance(value, dict):
        raise EngineError(field, f"{what} must be a JSON object; got {_kind_of(value)}")
    return value


def _too_large(field: str, what: str, limit: int, size: str) -> EngineError:
    return EngineError(
        field, f"{what} must be at most {limit} bytes of JSON; it has {size}"
    )


def _declared_length(request) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


def json_body(request, *, limit: int = MAX_BODY) -> dict[str, Any]:
    """Return the JSON object of an HTTP request's body (empty: ``{}``).

    Refused before anything is read: a body not sent as UTF-8 ``application/json``
    (MediaTypeError), and one declared longer than ``limit`` bytes; no more than
    ``limit`` bytes are ever read.
    """
    length = _declared_length(request)
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if request.content_type != JSON_TYPE or charset not in ("utf-8", "utf8"):
        if length == 0 or (length is None and not request.read(1)):
            return {}  # nothing was sent, so nothing of the wrong type
        sent = request.META.get("CONTENT_TYPE")
        raise MediaTypeError(
            "body",
            f"the request body must be sent as {JSON_TYPE} (UTF-8); it was sent "
            + (f"as {shorten(sent)}" if sent else "with no Content-Type"),
        )
    if length is not None and length > limit:
        raise _too_large("body", "the request body", limit, str(length))
    data = request.read(limit + 1)
    if len(data) > limit:
        raise _too_large("body", "the request body", limit, "more")
    return json_object(data or b"{}", limit=limit)


# Declarations ----------------------------------------------------------------

MOMENT = Object(
    "moment",
    (
        Text("run", max_length=36),
        Scalar(Param("at", "int", None, 0, 10**9, help="a frame number of that run")),
    ),
    required=("run", "at"),
    label="moment",
)

RUN_CREATE = Object(
    "body",
    (
        EngineKind("kind"),
        EngineParams("params"),
        Scalar(Param("seed", "int", None, 0, MAX_SEED)),
        Text("lesson", max_length=100, slug=True),
        MOMENT,
    ),
    required=("kind",),
    label="the request body",
)

REF = Ref("ref")


def _message(kind: str, *fields: Spec, required: tuple[str, ...] = ()) -> Object:
    return Object(
        kind,
        (Const("type", kind), *fields, REF),
        required=("type", *required),
        label=f"a {kind} message",
    )


# Client to server, controls first (in the order of CONTROL_ACTIONS).
MESSAGES = Tagged(
    "message",
    "type",
    (
        _message("pause"),
        _message("resume"),
        _message("step"),
        _message("speed", Among("value", SPEEDS), required=("value",)),
        _message(
            "set",
            DeclaredName("name", "param"),
            ParamValue("value", of="name"),
            required=("name", "value"),
        ),
        _message(
            "command",
            DeclaredName("name", "command"),
            CommandArgs("args", of="name"),
            required=("name",),
        ),
        _message("reset"),
        _message("stop"),
        _message("seen", Scalar(Param("seq", "int", None, min=0)), required=("seq",)),
        _message("ping"),
    ),
)
CONTROLS = MESSAGES.only(*CONTROL_ACTIONS)


def message_ref(message: Mapping[str, Any]) -> Any:
    """Return the message's ``ref`` to answer with, or None if it has no valid one."""
    ref = message.get("ref")
    if ref is None:
        return None
    try:
        return REF.check(ref, "ref", {})
    except EngineError:
        return None
