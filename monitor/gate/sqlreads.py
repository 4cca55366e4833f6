"""Could a SQL text read the deprecated counters? Names, stars and whole-row references.

A statement is a possible reader when it mentions the monitored table (or one of its
inheritance children) and either names a counter column or reads whole rows of the table:
`*` or `rm.*` over it, a whole-row value (`to_jsonb(rm)`, `rm::text`, `SELECT rm`), the row
type (`run_metadata%ROWTYPE`), `TABLE run_metadata`, `COPY run_metadata` or `INSERT INTO
run_metadata` without a column list, or a table alias that renames its columns. Statements
that change the schema (ALTER, CREATE INDEX, ...) read no rows and are not readers; objects
they create are found in the catalog instead. Names are compared as PostgreSQL resolves
them: unquoted, Unicode-unescaped and case-folded (see sqltext).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from monitor.gate.sqltext import Token, tokenize

# Statements whose first word says they read no rows (DO is read for the SQL in its body).
_NO_ROWS = frozenset({
    "alter", "drop", "comment", "grant", "revoke", "lock", "truncate", "vacuum", "analyze",
    "analyse", "cluster", "reindex", "security", "refresh", "checkpoint", "reset", "set", "show",
    "discard", "listen", "notify", "unlisten", "begin", "start", "commit", "end", "rollback",
    "abort", "savepoint", "release", "deallocate", "close", "load", "do",
})  # fmt: skip
_CREATE_MODIFIERS = frozenset({"or", "replace", "temp", "temporary", "unlogged", "global", "local",
                               "recursive", "materialized"})  # fmt: skip
# CREATE statements that hold a query (a temporary view can read and vanish): read them.
_CREATE_QUERIES = frozenset({"table", "view", "function", "procedure"})
# Words after a table that cannot be its alias.
_NOT_ALIAS = frozenset({
    "where", "join", "inner", "left", "right", "full", "cross", "natural", "on", "using",
    "group", "order", "limit", "offset", "fetch", "for", "window", "union", "intersect",
    "except", "having", "returning", "set", "values", "tablesample", "select", "from", "with",
    "to", "when", "then", "else", "end", "default", "lateral", "do", "into", "loop", "and",
    "or", "not", "is", "in", "overriding", "partition", "as",
})  # fmt: skip
_RELATION_BEFORE = frozenset({"from", "join", "into", "update", "only", "table", "copy", "using"})
_CLAUSES = frozenset({
    "select", "where", "group", "having", "order", "limit", "offset", "window", "returning",
    "set", "values", "on", "union", "intersect", "except", "into", "using", "for", "fetch",
})  # fmt: skip
_SUBQUERY = frozenset({"select", "with", "values", "table"})
_STAR_AFTER = frozenset({"select", "distinct", "all", ",", "returning"})
_VALUE_BEFORE = frozenset({"(", ",", "select", "distinct", "all", "[", "array", "row", "::",
                           "then", "else"})  # fmt: skip
_NOT_VALUE_BEFORE = frozenset({"return", "of", "by", "like"})
_COMPARED = frozenset({"=", "<>", "!=", "<", ">", "<=", ">=", "is", "isnull", "notnull", "in",
                       "not", "between"})  # fmt: skip
_MAX_DEPTH = 2  # SQL inside a string inside a string, and no deeper


@dataclass(frozen=True)
class Target:
    """The monitored table and its inheritance children as (schema, name), and the
    deprecated columns."""

    tables: frozenset[tuple[str, str]]
    columns: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.tables)

    @property
    def needles(self) -> list[str]:
        """Lower-case strings one of which a text must contain to mention the table: its
        names, or the start of an escape that could spell them (U&"...", E'\\x5f')."""
        found = {"u&", "\\"}
        for name in self.names:
            found |= {name.lower(), name.replace('"', '""').lower()}
        return sorted(found)

    def mentioned_in(self, text: str) -> bool:
        lower = text.lower()
        return any(n in lower for n in self.needles)


def reads(text: str, target: Target, aliases: Iterable[str] = (), *, depth: int = 0) -> list[str]:
    """Why `text` could read the counters, one reason per finding; [] when it cannot.

    `aliases` are names that stand for a row of the table without mentioning it (NEW and
    OLD in a trigger function on it). Never raises.
    """
    given = frozenset(aliases)
    found: list[str] = []
    for statement in _statements(tokenize(text)):
        found += _in_strings(statement, target, given, depth)
        head = _word(statement[0])
        if head in _NO_ROWS or (head == "create" and not _creates_query(statement)):
            continue
        found += _Statement(statement, target, given).reasons()
    return list(dict.fromkeys(found))


def _split(tokens: list[Token]) -> Iterator[list[Token]]:
    current: list[Token] = []
    depth = 0
    for t in tokens:
        if t.kind == "comment":
            continue
        if t.kind == "punct" and t.value in "()":
            depth = depth + 1 if t.value == "(" else max(0, depth - 1)
        if t.kind == "punct" and t.value == ";" and depth == 0:
            if current:
                yield current
            current = []
            continue
        current.append(t)
    if current:
        yield current


def _statements(tokens: list[Token]) -> Iterator[list[Token]]:
    """The statements of a text, without comments; PL/pgSQL's BEGIN (and SQL's BEGIN
    ATOMIC) open a block and are left off the statement that follows them."""
    for statement in _split(tokens):
        start = 0
        while start < len(statement) - 1 and _word(statement[start]) in ("begin", "atomic"):
            start += 1
        yield statement[start:]


def _word(token: Token) -> str:
    """A keyword or punctuation as written; quoted names and constants are never keywords."""
    if token.kind == "ident":
        return "" if token.quoted else token.value
    return token.value if token.kind in ("op", "punct") else ""


def _creates_query(statement: list[Token]) -> bool:
    """CREATE TABLE (AS), VIEW, MATERIALIZED VIEW, FUNCTION or PROCEDURE: they hold a query
    that reads when used, and a temporary one leaves no catalog entry behind. Indexes,
    rules, policies and the like are read from the catalog while they exist."""
    rest = [w for w in (_word(t) for t in statement[1:7]) if w not in _CREATE_MODIFIERS]
    return bool(rest) and rest[0] in _CREATE_QUERIES


def _in_strings(statement: list[Token], target: Target, given: frozenset[str],
                depth: int) -> list[str]:  # fmt: skip
    """SQL kept in string constants (DO blocks, EXECUTE in a function body) is read too."""
    if depth >= _MAX_DEPTH:
        return []
    found: list[str] = []
    for t in statement:
        if t.kind == "string" and target.mentioned_in(t.value):
            found += [f"in a string: {r}" for r in reads(t.value, target, given, depth=depth + 1)]
    return found


@dataclass
class _Chain:
    """A dotted name (a, a.b, a.b.c), maybe followed by .*, at tokens start..end."""

    start: int
    end: int
    names: list[str]
    star: bool
    table_at: int | None


class _Statement:
    """One statement's tokens, with paren regions, clauses and dotted names worked out."""

    def __init__(self, tokens: list[Token], target: Target, given: frozenset[str]) -> None:
        self.t = tokens
        self.w = [_word(t) for t in tokens]
        self.target = target
        self.tables, self.names = target.tables, target.names
        self.given = given
        self.region, self.in_from, self.opener = self._structure()
        self.chains = self._chains()

    def _structure(self) -> tuple[list[int], list[bool], dict[int, int]]:
        """Per token: its query region (a subquery starts a new one) and whether a comma
        there separates FROM items; and each closing paren's opening one."""
        regions, in_from, opener = [0] * len(self.w), [False] * len(self.w), {}
        stack: list[tuple[int, bool, int]] = [(0, False, -1)]
        fresh = 1
        for i, w in enumerate(self.w):
            region, clause_from, _ = stack[-1]
            if w == "(":
                if i + 1 < len(self.w) and self.w[i + 1] in _SUBQUERY:
                    stack.append((fresh, False, i))
                    fresh += 1
                else:  # a join tree in FROM, or an expression: same query
                    stack.append((region, clause_from, i))
            elif w == ")" and len(stack) > 1:
                opener[i] = stack.pop()[2]
            elif w in ("from", "join") and not (w == "from" and self.w[i - 1 : i] == ["distinct"]):
                stack[-1] = (region, True, stack[-1][2])
            elif w in _CLAUSES:
                stack[-1] = (region, False, stack[-1][2])
            regions[i], in_from[i] = stack[-1][0], stack[-1][1]
        return regions, in_from, opener

    def _chains(self) -> list[_Chain]:
        chains, i, n = [], 0, len(self.t)
        while i < n:
            if self.t[i].kind != "ident" or (i > 0 and self.w[i - 1] == "."):
                i += 1
                continue
            j, names = i, [self.t[i].value]
            while j + 2 < n and self.w[j + 1] == "." and self.t[j + 2].kind == "ident":
                j += 2
                names.append(self.t[j].value)
            star = j + 2 < n and self.w[j + 1] == "." and self.w[j + 2] == "*"
            chains.append(_Chain(i, j, names, star, self._table_at(names)))
            i = j + 1
        return chains

    def _table_at(self, names: list[str]) -> int | None:
        if len(names) >= 2 and (names[0], names[1]) in self.tables:
            return 1
        if len(names) >= 3 and (names[1], names[2]) in self.tables:
            return 2
        return 0 if names[0] in self.names else None

    def _before(self, i: int) -> str:
        return self.w[i - 1] if i > 0 else ""

    def _after(self, i: int) -> str:
        return self.w[i + 1] if i + 1 < len(self.w) else ""

    def reasons(self) -> list[str]:
        mentions = [c for c in self.chains if c.table_at is not None]
        if not mentions and not self.given:
            return []
        found: list[str] = []
        relations: list[_Chain] = []
        aliases, definitions = set(self.given), set()
        for c in mentions:
            if c.table_at == len(c.names) - 1 and not c.star and self._is_relation(c.start):
                relations.append(c)
                alias_at, why = self._relation(c)
                found += why
                if alias_at is not None:
                    aliases.add(self.t[alias_at].value)
                    definitions.add(alias_at)
        taken = {c.start for c in relations} | definitions
        for c in self.chains:
            if c.start in taken:
                continue
            found += self._names(c)
            found += self._whole_rows(c, aliases)
        found += self._stars({self.region[c.start]: c.names[-1] for c in relations})
        return found

    def _is_relation(self, start: int) -> bool:
        before = self._before(start)
        return before in _RELATION_BEFORE or (before == "," and self.in_from[start])

    def _relation(self, c: _Chain) -> tuple[int | None, list[str]]:
        """The alias a table reference defines, and why the reference itself reads rows."""
        name, head, before = c.names[-1], self.w[0], self._before(c.start)
        found: list[str] = []
        k = c.end + 1
        if self._word_at(k) == "*":
            k += 1
        alias_at: int | None = None
        if self._word_at(k) == "as" and k + 1 < len(self.t) and self.t[k + 1].kind == "ident":
            alias_at = k + 1
        elif k < len(self.t) and self.t[k].kind == "ident" and self.w[k] not in _NOT_ALIAS:
            alias_at = k
        after_at = alias_at + 1 if alias_at is not None else k
        after = self._word_at(after_at)
        if before == "table":
            found.append(f"reads whole rows (TABLE {name})")
        if head == "copy" and before == "copy" and after != "(":
            found.append(f"copies whole rows of {name} (no column list)")
        if (
            head in ("insert", "with")
            and before == "into"
            and (after != "(" or self._word_at(after_at + 1) in _SUBQUERY)
        ):
            found.append(f"inserts into {name} without a column list")
        if alias_at is not None and after == "(" and head != "insert":
            found.append(f"renames the columns of {name} ({self.t[alias_at].text}(...))")
        return alias_at, found

    def _word_at(self, i: int) -> str:
        return self.w[i] if 0 <= i < len(self.w) else ""

    def _names(self, c: _Chain) -> list[str]:
        first = 0 if c.table_at is None else c.table_at + 1
        return [f"names {name}" for name in c.names[first:] if name in self.target.columns]

    def _whole_rows(self, c: _Chain, aliases: set[str]) -> list[str]:
        if c.table_at is not None and c.table_at == len(c.names) - 1:
            return self._table_rows(c)
        if len(c.names) != 1 or c.names[0] not in aliases:
            return []
        before, after = self._before(c.start), self._after(c.end)
        alias = self.t[c.start].text
        if c.star:
            return [f"reads {alias}.*"]
        if before in _NOT_VALUE_BEFORE or after in _COMPARED:
            return []
        if before in _VALUE_BEFORE or after == "::":
            return [f"uses whole rows ({alias})"]
        return []

    def _table_rows(self, c: _Chain) -> list[str]:
        """The table's own name used as a value or a type, not as a FROM item."""
        name, before, after = c.names[-1], self._before(c.start), self._after(c.end)
        if c.star:
            return [f"reads {name}.*"]
        if before in _NOT_VALUE_BEFORE or after in _COMPARED:
            return []
        if after == "%":
            return [f"uses the row type of {name} (%ROWTYPE)"]
        return [f"uses whole rows or the row type of {name}"]

    def _stars(self, regions: dict[int, str]) -> list[str]:
        """A bare * (not count(*), not a product) in a query whose FROM has the table."""
        found: list[str] = []
        for i, w in enumerate(self.w):
            before = self._before(i)
            if w != "*" or self.t[i].kind != "op" or self.region[i] not in regions:
                continue
            distinct_on = before == ")" and self._word_at(self.opener.get(i - 1, -9) - 1) == "on"
            if before in _STAR_AFTER or distinct_on:
                found.append(f"reads * from {regions[self.region[i]]}")
        return found
