"""Reading SQL text as PostgreSQL does: names unquoted, constants blanked, readers told apart."""

from __future__ import annotations

import pytest

from monitor.gate.sqlreads import Target, reads
from monitor.gate.sqltext import canonical, rendered, tokenize

TARGET = Target(frozenset({("public", "run_metadata")}),
                frozenset({"completed_workers", "failed_workers"}))  # fmt: skip


def names(text: str) -> list[str]:
    return [t.value for t in tokenize(text) if t.kind == "ident"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT Failed_Workers", ["select", "failed_workers"]),
        ('SELECT "Failed_Workers"', ["select", "Failed_Workers"]),
        ('SELECT "a""b"', ["select", 'a"b']),
        ('SELECT U&"failed\\005fworkers"', ["select", "failed_workers"]),
        ("SELECT u&\"failed!005fworkers\" UESCAPE '!'", ["select", "failed_workers"]),
        ('SELECT U&"\\+00005fx\\\\"', ["select", "_x\\"]),
        ("SELECT /* a /* nested */ failed_workers */ x -- failed_workers\n", ["select", "x"]),
        ("SELECT 'failed_workers', $$failed_workers$$, $q$x$q$, E'it\\'s'", ["select"]),
        ("SELECT " + "a" * 70, ["select", "a" * 63]),
    ],
)
def test_identifiers_are_what_the_server_sees(text, expected):
    assert names(text) == expected


def test_strings_keep_their_content():
    tokens = tokenize("SELECT E'a\\'b', 'c''d', $f$ e $f$")
    strings = [t.value for t in tokens if t.kind == "string"]
    assert strings == ["a'b", "c'd", " e "]


def test_escapes_in_strings_are_decoded():
    tokens = tokenize("SELECT E'run\\x5fmeta\\144ata \\u0041\\n', U&'x'")
    assert [t.value for t in tokens if t.kind == "string"] == ["run_metadata A\n", "x"]


def test_operators_split_as_scan_l_does():
    assert [t.value for t in tokenize("a=-1 *-- c") if t.kind == "op"] == ["=", "-", "*"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("SELECT /* dq-monitor:x */ a FROM t WHERE b IN (%s, %s) AND c = %(c)s AND d <> 0",
         "SELECT /* dq-monitor:x */ a FROM t WHERE b IN ($1 /*, ... */) AND c = $2 AND d <> $3"),
        ("SELECT coalesce(x, '') || ':' FROM t WHERE y = -5 AND z = true",
         "select COALESCE(x, $1) || $2 from t where y = $3 and z = $4"),
        ('SELECT "run_id" FROM "public"."run_metadata" WHERE v = ANY(ARRAY[1, 2])',
         "SELECT run_id FROM public.run_metadata WHERE v = ANY(ARRAY[$1 /*, ... */])"),
    ],
)  # fmt: skip
def test_canonical_forms_match_what_pg_stat_statements_keeps(sent, kept):
    assert canonical(rendered(sent)) == canonical(kept)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("SELECT /* dq-monitor:x */ a FROM t", "SELECT a FROM t"),
        ("SELECT /* dq-monitor:x */ a FROM t", "SELECT /* dq-monitor:y */ a FROM t"),
        ("SELECT a FROM t", "SELECT b FROM t"),
        ('SELECT "A" FROM t', "SELECT A FROM t"),
    ],
)
def test_canonical_forms_differ_when_the_statements_do(one, other):
    assert canonical(one) != canonical(other)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SELECT failed_workers FROM run_metadata", "names failed_workers"),
        ("SELECT rm.completed_workers FROM public.run_metadata rm", "names completed_workers"),
        ("UPDATE run_metadata SET failed_workers = 0", "names failed_workers"),
        ("SELECT * FROM run_metadata", "reads * from run_metadata"),
        ("SELECT run_id, * FROM run_metadata", "reads * from run_metadata"),
        ("SELECT DISTINCT ON (run_id) * FROM run_metadata", "reads * from run_metadata"),
        ("UPDATE run_metadata SET status = 'x' RETURNING *", "reads * from run_metadata"),
        ("SELECT * FROM partition_progress JOIN run_metadata USING (run_id)", "reads * from"),
        ("SELECT rm.* FROM run_metadata rm", "reads rm.*"),
        ("SELECT run_metadata.* FROM run_metadata", "reads run_metadata.*"),
        ("SELECT to_jsonb(rm) FROM run_metadata AS rm", "uses whole rows (rm)"),
        ('SELECT row_to_json("R") FROM run_metadata "R"', 'uses whole rows ("R")'),
        ("SELECT r::text FROM run_metadata r", "uses whole rows (r)"),
        ("SELECT x, r FROM run_metadata r", "uses whole rows (r)"),
        ("SELECT to_json(run_metadata) FROM run_metadata", "uses whole rows or the row type"),
        ("DECLARE r run_metadata%ROWTYPE", "uses the row type of run_metadata"),
        ("TABLE run_metadata", "reads whole rows (TABLE run_metadata)"),
        ("COPY run_metadata TO STDOUT", "copies whole rows of run_metadata"),
        ("INSERT INTO run_metadata VALUES ('r1')", "inserts into run_metadata without a column"),
        ("SELECT a.e FROM run_metadata a(b, c, d, e, f)", "renames the columns of run_metadata"),
        ('SELECT * FROM "public".U&"run\\005fmetadata"', "reads * from run_metadata"),
        ("WITH r AS (SELECT * FROM run_metadata) SELECT count(*) FROM r", "reads * from"),
        ("BEGIN SELECT * INTO rec FROM run_metadata; END", "reads * from run_metadata"),
        ("DO $$ BEGIN PERFORM to_jsonb(r) FROM run_metadata r; END $$", "in a string: uses"),
        ("SELECT dblink('db', 'SELECT * FROM run_metadata')", "in a string: reads *"),
        ("DO $$ BEGIN EXECUTE E'SELECT * FROM run\\x5fmetadata'; END $$", "in a string: in a"),
        ("EXPLAIN ANALYZE SELECT * FROM run_metadata", "reads * from run_metadata"),
        ("CREATE TABLE copy AS SELECT * FROM run_metadata", "reads * from run_metadata"),
        ("CREATE TEMP VIEW v AS SELECT failed_workers FROM run_metadata", "names failed_workers"),
        ("CREATE MATERIALIZED VIEW m AS SELECT to_jsonb(r) FROM run_metadata r", "uses whole"),
        ("CREATE FUNCTION pg_temp.f() RETURNS SETOF run_metadata LANGUAGE sql AS 'SELECT 1'",
         "uses whole rows or the row type of run_metadata"),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT count(*) FROM run_metadata"
         " WHERE failed_workers > 0 $$", "in a string: names failed_workers"),
        ("PREPARE p AS SELECT * FROM run_metadata", "reads * from run_metadata"),
        ("DECLARE c CURSOR FOR SELECT rm FROM run_metadata rm", "uses whole rows (rm)"),
        ("SELECT failed_workers(rm) FROM run_metadata rm", "names failed_workers"),
        ("SELECT (rm).* FROM run_metadata rm", "uses whole rows (rm)"),
        ("COPY (SELECT * FROM run_metadata) TO STDOUT", "reads * from run_metadata"),
        ("MERGE INTO a USING run_metadata s ON a.id = s.run_id WHEN NOT MATCHED THEN"
         " INSERT VALUES (s.*)", "reads s.*"),
        ("SELECT * FROM run_metadata TABLESAMPLE SYSTEM (10)", "reads * from run_metadata"),
    ],
)
def test_readers_are_found_with_a_reason(text, reason):
    found = reads(text, TARGET)
    assert any(r.startswith(reason) for r in found), found


@pytest.mark.parametrize(
    "text",
    [
        "SELECT count(*) FROM run_metadata",
        "SELECT run_id, status FROM run_metadata",
        "SELECT run_id * 2 FROM run_metadata",
        "SELECT pp.* FROM partition_progress pp JOIN run_metadata rm USING (run_id)",
        "SELECT * FROM partition_progress WHERE run_id IN (SELECT run_id FROM run_metadata)",
        "SELECT rm.run_id FROM run_metadata rm WHERE rm IS NOT NULL",
        "SELECT failed_workers FROM archive",  # not the table
        "SELECT * FROM other.run_metadata",  # another schema's table
        "INSERT INTO run_metadata (run_id) VALUES ('r1')",
        "COPY run_metadata (run_id, status) TO STDOUT",
        "ALTER TABLE run_metadata DROP COLUMN failed_workers",
        "CREATE INDEX ON run_metadata (failed_workers)",
        "CREATE RULE r AS ON INSERT TO run_metadata DO ALSO NOTIFY runs",
        "CREATE TRIGGER t AFTER UPDATE ON run_metadata FOR EACH ROW EXECUTE FUNCTION f()",
        "LOCK TABLE run_metadata IN ACCESS EXCLUSIVE MODE",
        "CREATE TABLE t (LIKE run_metadata)",
        "SELECT * FROM run_metadata_old",
        "SELECT run_id FROM run_metadata FOR UPDATE OF run_metadata",
    ],
)
def test_statements_that_read_no_counter(text):
    assert reads(text, TARGET) == []


def test_trigger_rows_are_whole_rows_of_the_table():
    body = "BEGIN INSERT INTO log VALUES (to_jsonb(NEW)); IF NEW IS DISTINCT FROM OLD THEN" \
           " NULL; END IF; RETURN NEW; END"  # fmt: skip
    assert reads(body, TARGET, ("new", "old")) == ["uses whole rows (NEW)"]
    assert reads("BEGIN RETURN NEW; END", TARGET, ("new", "old")) == []
    assert reads("BEGIN RAISE NOTICE '%', NEW.failed_workers; END", TARGET, ("new", "old")) == [
        "names failed_workers"
    ]
