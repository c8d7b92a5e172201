"""Drawn numeric questions: figures drawn for each student, an answer computed.

A number question may declare ``params``, each a range ``{min, max, step}`` or a list
``{choices}``; its ``answer`` is then a formula over them, and its prompt and explanation
show them (and any formula of them) in ``{braces}``. Each student draws their own
figures, the same ones on every visit; a class draws one set for everyone, so that its
answers can be compared.

Formulas are arithmetic only: numbers, names, ``+ - * / // % **``, parentheses and a
few functions. They are parsed with :mod:`ast` and evaluated by walking the tree, never
with ``eval``.
"""

from __future__ import annotations

import ast
import hashlib
import math
import random
import re
from collections.abc import Mapping
from typing import Any

FUNCTIONS = {
    "ceil": math.ceil,
    "floor": math.floor,
    "round": round,
    "min": min,
    "max": max,
    "abs": abs,
    "sqrt": math.sqrt,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "exp": math.exp,
}
OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}
UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: a}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A placeholder: anything between braces that holds no brace.
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
MAX_FORMULA = 300
# Checking a question evaluates its formulas at this many draws besides the corners.
CHECK_DRAWS = 40


class FormulaError(ValueError):
    """A formula, a parameter or a placeholder that cannot be used; says why."""


class Formula:
    """An arithmetic expression over named figures, checked once when parsed."""

    def __init__(self, text: str, names: set[str] | frozenset[str]):
        if not isinstance(text, str) or not text.strip():
            raise FormulaError("must be a formula, for example users * 2 / 86400")
        if len(text) > MAX_FORMULA:
            raise FormulaError(f"must be at most {MAX_FORMULA} characters")
        self.text = text.strip()
        try:
            self.tree = ast.parse(self.text, mode="eval").body
        except SyntaxError:
            raise FormulaError(f"{self.text!r} is not a formula") from None
        self.names = frozenset(names)
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise FormulaError(f"{self.text!r}: only numbers can appear in it")
        elif isinstance(node, ast.Name):
            if node.id not in self.names:
                known = ", ".join(sorted(self.names)) or "none"
                raise FormulaError(
                    f"{self.text!r} uses {node.id!r}, which is not one of its figures "
                    f"({known})"
                )
        elif isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            self._check(node.operand)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS
            and not node.keywords
            and node.args
        ):
            for arg in node.args:
                self._check(arg)
        else:
            raise FormulaError(
                f"{self.text!r}: a formula has numbers, figures, + - * / // % **, "
                "parentheses and the functions " + ", ".join(FUNCTIONS)
            )

    def __call__(self, values: Mapping[str, float]) -> float:
        try:
            result = float(self._eval(self.tree, values))
        except (ArithmeticError, ValueError) as exc:
            raise FormulaError(f"{self.text!r} cannot be computed: {exc}") from None
        if not math.isfinite(result):
            raise FormulaError(f"{self.text!r} is not a finite number")
        return result

    def _eval(self, node: ast.AST, values: Mapping[str, float]) -> float:
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return float(values[node.id])
        if isinstance(node, ast.BinOp):
            left = self._eval(node.left, values)
            right = self._eval(node.right, values)
            return OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            return UNARY[type(node.op)](self._eval(node.operand, values))
        args = [self._eval(arg, values) for arg in node.args]
        return float(FUNCTIONS[node.func.id](*args))


def param_clean(name: str, spec: Any) -> dict[str, Any]:
    """Check a parameter's spec: ``{min, max, step}`` or ``{choices}``; return it."""
    if not NAME.match(name) or name == "answer" or name in FUNCTIONS:
        raise FormulaError(
            "a figure's name is a letter or _ followed by letters, digits or _, "
            "and not answer or a function's name"
        )

    def number(value: Any, what: str) -> int | float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise FormulaError(f"{what} must be a number")
        return value

    if not isinstance(spec, dict):
        raise FormulaError("must be a table: { min, max, step } or { choices = [...] }")
    if set(spec) == {"choices"}:
        choices = spec["choices"]
        if not isinstance(choices, list) or len(choices) < 2:
            raise FormulaError("choices must be a list of at least two numbers")
        return {"choices": [number(c, "each choice") for c in choices]}
    if set(spec) != {"min", "max", "step"}:
        raise FormulaError(
            "must have min, max and step, or only choices; it has "
            + (", ".join(sorted(spec)) or "nothing")
        )
    low, high, step = (number(spec[k], k) for k in ("min", "max", "step"))
    if step <= 0:
        raise FormulaError("step must be more than 0")
    if high <= low:
        raise FormulaError("max must be more than min")
    if (high - low) / step > 1_000_000:
        raise FormulaError("at most a million values: make the step larger")
    return {"min": low, "max": high, "step": step}


def _values(spec: dict[str, Any]) -> int:
    """How many values a range parameter can take."""
    return int(math.floor((spec["max"] - spec["min"]) / spec["step"] + 1e-9)) + 1


def _value(spec: dict[str, Any], i: int) -> int | float:
    value = spec["min"] + i * spec["step"]
    if all(isinstance(spec[k], int) for k in ("min", "step")):
        return int(value)
    return round(value, 10)


def draw(params: dict[str, dict], seed: str) -> dict[str, int | float]:
    """Draw each parameter's value, the same for the same ``seed``."""
    rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8]))
    out: dict[str, int | float] = {}
    for name in sorted(params):
        spec = params[name]
        if "choices" in spec:
            out[name] = rng.choice(spec["choices"])
        else:
            out[name] = _value(spec, rng.randrange(_values(spec)))
    return out


def corners(params: dict[str, dict]) -> list[dict[str, int | float]]:
    """Every parameter at its smallest, then at its largest value, then draws."""
    low = {
        n: min(s["choices"]) if "choices" in s else s["min"] for n, s in params.items()
    }
    high = {
        n: max(s["choices"]) if "choices" in s else _value(s, _values(s) - 1)
        for n, s in params.items()
    }
    return [low, high] + [draw(params, f"check:{i}") for i in range(CHECK_DRAWS)]


def figure(value: float) -> str:
    """A figure as a student reads it: whole with separators from 100, else 3 digits."""
    if abs(value) >= 100:
        return f"{round(value):,}"
    if value == int(value):
        return str(int(value))
    return f"{value:.3g}"


def placeholders(text: str, names: set[str]) -> list[Formula]:
    """The formulas a text shows in braces, each checked against ``names``."""
    return [Formula(m[1], names) for m in PLACEHOLDER.finditer(text)]


def fill(text: str, values: Mapping[str, float]) -> str:
    """Show the value of each ``{formula}`` of ``text``."""
    names = set(values)
    return PLACEHOLDER.sub(lambda m: figure(Formula(m[1], names)(values)), text)


def tolerance_parse(value: Any) -> tuple[float, bool]:
    """A tolerance: a number (absolute) or "N%" (of the answer); (amount, relative)."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                amount = float(text[:-1])
            except ValueError:
                amount = math.nan
            if math.isfinite(amount) and amount >= 0:
                return amount, True
        raise FormulaError('must be a number, or a percentage of the answer like "5%"')
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormulaError('must be a number, or a percentage of the answer like "5%"')
    if not math.isfinite(value) or value < 0:
        raise FormulaError("must be 0 or more")
    return float(value), False
