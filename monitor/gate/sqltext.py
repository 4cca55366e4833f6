"""SQL text read the way PostgreSQL's lexer reads it: tokens, a canonical form, counter readers.

pg_stat_statements and the catalogs hand the gate SQL as text. Two questions are asked of it:
is a statement one of dq-monitor's own (compared token by token after blanking constants, as
pg_stat_statements blanks them), and could it read the deprecated counters: it names one
(after unquoting, Unicode unescaping and case folding), or it reads whole rows of the table
(`*`, `rm.*`, `to_jsonb(rm)`, `TABLE`, `COPY` without a column list, renamed columns).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_OP_CHARS = frozenset("+-*/<>=~!@#%^&|`?")
_SELF_CHARS = frozenset(",()[];:.")
_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
_NUMBER = re.compile(
    r"0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?"
)
_PARAM = re.compile(r"\$\d+")
_DOLLAR = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
_UESCAPE = re.compile(r"\s*UESCAPE\s*'([^'])'", re.IGNORECASE)
_STRING_PREFIX = re.compile(r"(?:[EeBbXxNn]|[Uu]&)'")
_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer identifiers
MARKER_PREFIX = "/* dq-monitor:"


class Token(NamedTuple):
    """One lexeme: `value` is what PostgreSQL sees (a folded or unquoted name, a string's
    content); `text` is as written."""

    kind: str  # ident, string, number, param, op, punct, comment
    text: str
    value: str
    quoted: bool = False


_SPACE = re.compile(r"\s+")
_PLAIN_PUNCT = frozenset(",()[];")


def tokenize(text: str) -> list[Token]:
    """Lex SQL (comments kept as tokens). Never raises: unterminated items run to the end."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            space = _SPACE.match(text, i)
            i = space.end() if space else i + 1
            continue
        if c in _PLAIN_PUNCT:
            out.append(Token("punct", c, c))
            i += 1
            continue
        # The common case first: a plain word not starting a string (E'..', U&"..").
        m = _IDENT.match(text, i)
        if m and text[m.end() : m.end() + 1] not in ("'", '"', "&"):
            word = m.group(0)
            out.append(Token("ident", word, _name(_fold(word))))
            i = m.end()
            continue
        token, i = _next_token(text, i)
        out.append(token)
    return out


def _next_token(text: str, i: int) -> tuple[Token, int]:  # noqa: PLR0911, PLR0912 - one per lexeme kind
    c, two = text[i], text[i : i + 2]
    if two == "--":
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        return Token("comment", text[i:end], text[i:end]), end
    if two == "/*":
        end = _comment_end(text, i)
        return Token("comment", text[i:end], text[i:end]), end
    prefix = _STRING_PREFIX.match(text, i)
    if c == "'" or prefix:
        start = prefix.end() - 1 if prefix else i
        backslash = c in "Ee"
        content, end = _quoted(text, start, "'", backslash=backslash)
        return Token("string", text[i:end], content), end
    if text[i : i + 3].lower() == 'u&"':
        content, end = _quoted(text, i + 2, '"')
        escape = "\\"
        if m := _UESCAPE.match(text, end):
            escape, end = m.group(1), m.end()
        return Token("ident", text[i:end], _name(_unescape(content, escape)), quoted=True), end
    if c == '"':
        content, end = _quoted(text, i, '"')
        return Token("ident", text[i:end], _name(content), quoted=True), end
    if c == "$":
        if m := _PARAM.match(text, i):
            return Token("param", m.group(0), m.group(0)), m.end()
        if m := _DOLLAR.match(text, i):
            close = text.find(m.group(0), m.end())
            end = len(text) if close < 0 else close + len(m.group(0))
            body = text[m.end() : close if close >= 0 else len(text)]
            return Token("string", text[i:end], body), end
    if (c.isdigit() or (c == "." and text[i + 1 : i + 2].isdigit())) and (
        m := _NUMBER.match(text, i)
    ):
        return Token("number", m.group(0), m.group(0)), m.end()
    if m := _IDENT.match(text, i):
        word = m.group(0)
        return Token("ident", word, _name(_fold(word))), m.end()
    if two == "::":
        return Token("punct", "::", "::"), i + 2
    if c in _OP_CHARS:
        op = _operator(text, i)
        return Token("op", op, op), i + len(op)
    return Token("punct", c, c), i + 1


def _comment_end(text: str, i: int) -> int:
    """End of a block comment starting at i; PostgreSQL's block comments nest."""
    depth, j = 0, i
    while j < len(text):
        if text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(text)


def _quoted(text: str, i: int, quote: str, *, backslash: bool = False) -> tuple[str, int]:
    """Content and end of a quoted item whose opening quote is at i (doubled quote = one)."""
    parts: list[str] = []
    j, n = i + 1, len(text)
    while j < n:
        ch = text[j]
        if backslash and ch == "\\" and j + 1 < n:
            char, j = _backslash_escape(text, j)
            parts.append(char)
        elif ch == quote and text[j + 1 : j + 2] == quote:
            parts.append(quote)
            j += 2
        elif ch == quote:
            return "".join(parts), j + 1
        else:
            parts.append(ch)
            j += 1
    return "".join(parts), n


_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_NUMERIC_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})"
                             r"|U([0-9A-Fa-f]{8}))")  # fmt: skip


def _backslash_escape(text: str, j: int) -> tuple[str, int]:
    """One E'...' escape at text[j] (a backslash): the character and where the next begins."""
    m = _NUMERIC_ESCAPE.match(text, j)
    if m:
        octal, hex2, hex4, hex8 = m.groups()
        code = int(octal, 8) if octal else int(hex2 or hex4 or hex8, 16)
        return (chr(code) if code <= 0x10FFFF else "?"), m.end()
    nxt = text[j + 1]
    return _ESCAPES.get(nxt, nxt), j + 2


def _unescape(content: str, escape: str) -> str:
    """Decode U&"..." escapes: \\XXXX, \\+XXXXXX and a doubled escape character."""
    out: list[str] = []
    j = 0
    while j < len(content):
        if content[j] == escape:
            if content[j + 1 : j + 2] == escape:
                out.append(escape)
                j += 2
                continue
            six = content[j + 2 : j + 8]
            if content[j + 1 : j + 2] == "+" and re.fullmatch(r"[0-9A-Fa-f]{6}", six):
                out.append(chr(int(six, 16)))
                j += 8
                continue
            four = content[j + 1 : j + 5]
            if re.fullmatch(r"[0-9A-Fa-f]{4}", four):
                out.append(chr(int(four, 16)))
                j += 5
                continue
        out.append(content[j])
        j += 1
    return "".join(out)


def _fold(word: str) -> str:
    """Unquoted names fold to lower case, ASCII letters only (as downcase_identifier does)."""
    return word.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _name(value: str) -> str:
    """A name as the server stores it: at most 63 bytes."""
    if len(value) <= _NAME_BYTES // 4:
        return value
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= _NAME_BYTES:
        return value
    return raw[:_NAME_BYTES].decode("utf-8", "ignore")


def _operator(text: str, i: int) -> str:
    j = i
    while j < len(text) and text[j] in _OP_CHARS:
        if j > i and text[j : j + 2] in ("--", "/*"):
            break
        j += 1
    op = text[i:j]
    # As scan.l does: a multi-character operator ends in + or - only if it has one of these.
    if len(op) > 1 and not any(ch in "~!@#%^&|`?" for ch in op):
        op = op.rstrip("+-") or op[0]
    return op


# --- canonical form: is this statement one of ours? ------------------------------------------

_PLACEHOLDER = re.compile(r"%%|%\(\w+\)s|%s")


def rendered(query: str) -> str:
    """A psycopg query as the server receives it: placeholders become $n, %% becomes %."""
    return _PLACEHOLDER.sub(lambda m: "%" if m.group(0) == "%%" else "$0", query)


def canonical(text: str) -> tuple[str, ...]:
    """Tokens with constants and parameters blanked, constant lists squashed and comments
    dropped except dq-monitor's marker: equal for two texts pg_stat_statements cannot tell
    apart, whichever of them it kept."""
    out: list[str] = []
    for t in tokenize(text):
        if t.kind == "comment":
            if t.text.startswith(MARKER_PREFIX):
                out.append(t.text)
        elif t.kind in ("string", "number", "param") or (
            t.kind == "ident" and not t.quoted and t.value in ("true", "false", "null")
        ):
            if out and out[-1] in ("-", "+") and (len(out) < 2 or _before_unary(out[-2])):
                out.pop()  # pg_stat_statements blanks the sign with the constant
            out.append("?")
        elif t.kind == "ident":
            out.append('"' + t.value + '"')
        else:
            out.append(t.value)
    return tuple(_squash(out))


def _before_unary(token: str) -> bool:
    return token in ("(", ",", "[") or all(ch in _OP_CHARS for ch in token)


def _squash(tokens: list[str]) -> list[str]:
    """(?, ?, ...) and [?, ?, ...] become (?) and [?]: PostgreSQL 18 squashes such lists."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        out.append(tokens[i])
        if tokens[i] in ("(", "[") and i + 1 < len(tokens) and tokens[i + 1] == "?":
            close = ")" if tokens[i] == "(" else "]"
            j = i + 2
            while j + 1 < len(tokens) and tokens[j] == "," and tokens[j + 1] == "?":
                j += 2
            if j < len(tokens) and tokens[j] == close:
                out += ["?", close]
                i = j + 1
                continue
        i += 1
    return out
