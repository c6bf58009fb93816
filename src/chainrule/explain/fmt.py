"""Numbers, names and formulas as text and as LaTeX.

The registry writes each primitive's forward and local derivatives as small templates in
fixed variable names (x; a, b; y for the output). `fill` substitutes the names (or numbers) of
the actual operands into such a template, in one pass, so a user's tensor called `x` never
collides with the template's `x`. `latex_template` turns a template into LaTeX *before*
substitution, so operand names are converted exactly once.
"""
import re

import numpy as np

from ..ops.registry import ATOM

MINUS = "\u2212"  # the subtraction sign in update lines; negative numbers keep ASCII '-'

# A number in a derivation line that is the value of a named quantity (y_h, ∂y_o/∂z_o,
# ∂Loss/∂w_o, w_o(1)) is wrapped in private-use marks while lines are built: tag(q, text).
# The data model stores each line plain with the spans of its quantities (`spans`), which is
# how a worksheet blanks every occurrence of a hidden quantity and the explorer highlights one.
TAG_OPEN, TAG_MID, TAG_CLOSE = "\ue000", "\ue001", "\ue002"
_TAG = re.compile("\ue000([^\ue001]*)\ue001([^\ue002]*)\ue002")


def tag(quantity, text):
    """`text` marked as the value of `quantity` (no mark when quantity is None)."""
    return text if quantity is None else f"{TAG_OPEN}{quantity}{TAG_MID}{text}{TAG_CLOSE}"


def plain(text):
    """`text` without quantity marks."""
    return _TAG.sub(r"\2", text)


def spans(text):
    """(plain text, [[start, end, quantity], ...]) of a marked line."""
    out, refs, pos = [], [], 0
    length = 0
    for m in _TAG.finditer(text):
        before = text[pos:m.start()]
        out.append(before)
        length += len(before)
        out.append(m.group(2))
        refs.append([length, length + len(m.group(2)), m.group(1)])
        length += len(m.group(2))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), refs


def _var_regex(keys):
    alts = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z_\\])({alts})(?![A-Za-z_0-9])")


def missing_optional(prim, n):
    """Template names of optional inputs that this application left out, e.g. the bias of a
    `linear` without one."""
    return [] if prim.variadic else list(prim.inputs[n:])


def operand_keys(prim, n):
    """The names a primitive's templates use for its n inputs (the registry's `inputs`)."""
    if prim.variadic:
        return [f"x{i + 1}" for i in range(n)]
    return list(prim.inputs[:n])


_POWER = re.compile(r"(\w+)\^(\w+)")


def power_operands(prim, n):
    """(base index, exponent index) when the registry formula is a power 'a^b', else None."""
    m = _POWER.fullmatch(prim.formula)
    keys = operand_keys(prim, n)
    if m is None or m.group(1) not in keys or m.group(2) not in keys:
        return None
    return keys.index(m.group(1)), keys.index(m.group(2))


def significant_digits(dtype):
    """Digits a value of `dtype` carries: 10 for float64 (enough for every hand-calculated
    figure, short of binary noise), 7 for float32."""
    return 10 if np.dtype(dtype) == np.float64 else 7


def num(value, digits=10):
    """A scalar as a short decimal: `num(0.30000000000000004) == '0.3'`."""
    v = float(np.asarray(value).reshape(()))
    if v == 0:
        return "0"
    if not np.isfinite(v):
        return str(v)
    text = f"{v:.{digits}g}"
    if "e" in text:
        mant, exp = text.split("e")
        return f"{mant}e{int(exp)}"
    return text


SUMMARY = 12   # tensors with more entries than this are summarised unless full=True


def value_text(arr, digits=10, full=SUMMARY):
    """A value for display: scalars as numbers, small tensors in full, big ones summarised
    (shape, mean, range and the first entries); `full=None` shows every entry."""
    arr = np.asarray(arr)
    if arr.size == 1:
        return num(arr.reshape(()), digits)
    d = min(digits, 6)
    if full is None or arr.size <= full:
        return _nested(arr, d)
    flat = arr.astype(np.float64).ravel()
    head = ", ".join(num(v, 4) for v in flat[:4])
    return (f"tensor{tuple(arr.shape)} mean {num(flat.mean(), 4)}, range "
            f"[{num(flat.min(), 4)}, {num(flat.max(), 4)}], first [{head}, …]")


def _nested(arr, digits):
    if arr.ndim == 0:
        return num(arr, digits)
    return "[" + ", ".join(_nested(a, digits) for a in arr) + "]"


def _needs_paren(prim, var, prec, template, start, end, forward, text=""):
    """Whether an operand of binding strength `prec` needs parentheses at template[start:end]
    of `prim`'s template (an infix forward follows the registry's precedence and grouping)."""
    if template.strip() == var:
        return False
    text = plain(text)
    if text.startswith("-") and template[:start].strip():
        return True                       # 'a + (-0.2)', 'w · (-1.5)', not 'a + -0.2'
    if prec >= ATOM:
        return False
    if forward and prim is not None and prim.precedence < ATOM:
        own = prim.precedence
        if prim.grouping == "associative":
            return prec < own
        if prim.grouping == "left":       # the right operand is bracketed at equal strength
            return prec <= own if var != prim.inputs[0] else prec < own
        return True                       # -x, a^b, a @ b: only atoms stay bare
    before = template[:start].rstrip()[-1:]
    after = template[end:].lstrip()[:1]
    return not (before in ("(", ",", "{") and after in (")", ",", "}"))


def fill(template, names, prim=None, forward=False, juxtapose=False):
    """Substitute operands into a registry template: fill('a · b', {'a': ('w', 9),
    'b': ('x', 9)}) == 'w · x'. An operand is (text, binding strength); it is parenthesised
    only where the template's operator binds tighter. `prim`: the Primitive whose forward
    template (`forward=True`) this is."""
    def sub(m):
        var = m.group(1)
        if var not in names:
            return var
        text, prec = names[var]
        if _needs_paren(prim, var, prec, template, m.start(), m.end(), forward, text):
            text = f"({text})"
        if juxtapose:   # numbers written side by side need a sign: '3x' -> '3·1.5'
            before, after = template[m.start() - 1:m.start()], template[m.end():m.end() + 1]
            if before and ((before.isascii() and before.isalnum()) or before == ")"):
                text = "·" + text
            if after and ((after.isascii() and after.isalnum()) or after == "("):
                text = text + "·"
        if _inside_text(template, m.start()):   # LaTeX prose naming an operand: math again
            text = "}" + text + r"\text{"
        return text
    if not names:
        return template
    return _var_regex(names).sub(sub, template).replace(r"\text{}", "")


def _inside_text(template, pos):
    """Whether `pos` of a LaTeX template lies inside a \\text{...} group."""
    start = template.rfind(r"\text{", 0, pos)
    if start < 0:
        return False
    depth = 0
    for ch in template[start + 5:pos]:
        depth += (ch == "{") - (ch == "}")
    return depth > 0


def forward_template(prim, ndim=None):
    """The forward part of a registry formula ('σ(x) = 1/(1 + exp(-x))' -> 'σ(x)'); a 2-D
    output reads the registry's `formula_2d` where it has one (a transpose: xᵀ)."""
    if ndim == 2 and prim.formula_2d is not None:
        return prim.formula_2d
    return prim.formula.split(" = ")[0]


# ---- LaTeX ----
_LATEX_SYMBOLS = [("σ", r"\sigma"), ("·", r" \cdot "), ("×", r" \times "), ("Σ", r"\sum "),
                  ("≤", r" \le "), ("½", r"\tfrac12"), ("∂", r"\partial "),
                  ("⊙", r" \odot "), ("ᵀ", "^{\\top}"),
                  (MINUS, "-"), ("…", r"\dots"), ("η", r"\eta "), ("δ", r"\delta ")]


# Two or more English words in a registry hint ("summed over the batch") are text, not math.
_FUNCS = "ln|exp|max|min|sin|cos|tanh|softmax|onehot|diag|log|sum"
_PROSE = re.compile(rf"((?:\b(?!(?:{_FUNCS})\b)[a-z]{{2,}}\b[ ,:-]*){{2,}})")
_FUNC_CALL = re.compile(r"(?<![A-Za-z\\])(exp|ln|sin|cos|tanh|max|min)\(")
_FUNC_WORD = re.compile(r"(?<![A-Za-z\\])(exp|ln|sin|cos|tanh)(?= [A-Za-z(\[])")


def _prose(m):
    """Words in math as \\text{...}; math mode drops spaces outside \\text, so a space
    before or after the words moves inside the braces ('g summed' stays 'g summed')."""
    words = m.group(1)
    before = m.string[:m.start()].rstrip()[-1:]
    lead = " " if before and (before.isalnum() or before in ")]}") else ""
    return rf"\text{{{lead}{words}}}"


def latex_template(template):
    """A registry template in LaTeX (variables untouched, so `fill` can still run)."""
    t = template
    t = re.sub(r"√\(([^)]*)\)", r"\\sqrt{\1}", t)
    t = re.sub(r"√(\w+)", r"\\sqrt{\1}", t)
    t = re.sub(r"\^\(([^()]*)\)", r"^{\1}", t)
    t = re.sub(r"\^(\w+)", r"^{\1}", t)
    t = t.replace("²", "^{2}").replace("#", r"\#")
    t = _PROSE.sub(_prose, t)
    t = _FUNC_CALL.sub(lambda m: "\\" + m.group(1) + "(", t)
    t = _FUNC_WORD.sub(lambda m: "\\" + m.group(1), t)
    for a, b in _LATEX_SYMBOLS:
        t = t.replace(a, b)
    return re.sub(r" {2,}", " ", t)


def latex_function(name):
    """A function's name (a registry symbol) in LaTeX math: a Greek letter as its command
    (\\sigma), a standard function as its operator (\\tanh), any other name upright
    (\\mathrm{...})."""
    if _FUNC_CALL.fullmatch(name + "("):
        return "\\" + name
    if len(name) == 1:
        return latex_template(name)
    return rf"\mathrm{{{name}}}"


_SIMPLE = re.compile(r"([A-Za-z]+)_?([A-Za-z0-9]*)")


def latex_name(name):
    """A user's name in LaTeX math: 'w_o' -> 'w_{o}', 'Loss' -> '\\mathrm{Loss}',
    '0.weight' -> '\\text{0.weight}', '0.5' -> '0.5'."""
    if re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", name):
        return name
    m = _SIMPLE.fullmatch(name)
    if m:
        base, sub = m.groups()
        base = base if len(base) == 1 else rf"\mathrm{{{base}}}"
        if not sub:
            return base if "_" not in name else base + "_{}"
        return f"{base}_{{{sub}}}"
    safe = re.sub(r"([_#$%&{}])", r"\\\1", name)
    return rf"\text{{{safe}}}"






def dfrac_latex(top, bottom):
    return rf"\frac{{\partial {top}}}{{\partial {bottom}}}"
