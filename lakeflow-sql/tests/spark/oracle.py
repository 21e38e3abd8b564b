#!/usr/bin/env python3
"""Spark SQL conformance oracle for lakeflow-sql.

Generates the JSON conformance corpus in this directory (<area>.json) by running
every case below in a REAL local Apache Spark and recording Spark's output
column names, column types (DataType.simpleString()) and rows -- or the first
line of Spark's error message when Spark refuses the query.

Produced with: pyspark 4.3.0 (Apache Spark 4.3.0), Java 17, Python 3.11,
local[1], spark.sql.session.timeZone=UTC, JVM user.timezone=UTC.
Each case records the value of spark.sql.ansi.enabled it was run with ("ansi").

How to regenerate (needs Java 17 and `pip install 'pyspark==4.3.*'`):

    python3 lakeflow-sql/tests/spark/oracle.py            # rewrite all files
    python3 lakeflow-sql/tests/spark/oracle.py strings    # only some areas

Value encoding (input tables and expected rows):
  null -> null; boolean -> true/false; integral -> JSON int;
  float/double -> JSON number, or "NaN"/"Infinity"/"-Infinity"
  (float values are written as the shortest decimal that round-trips in f32);
  decimal -> string "12.50" (scale preserved); string -> string;
  date -> "YYYY-MM-DD"; timestamp / timestamp_ntz -> "YYYY-MM-DD HH:MM:SS[.ffffff]"
  (fraction trimmed of trailing zeros, omitted when zero; UTC);
  binary -> base64; array -> JSON array; struct -> JSON object (field order of
  the type); map -> JSON array of [key, value] pairs (Spark's iteration order);
  interval types (only in results) -> Spark's CAST(value AS STRING) text.
Rows: with "ordered": true they are in Spark's output order; otherwise compare
as a multiset (they are stored sorted by their JSON text, only for stable diffs).
"""
import base64
import datetime as _dt
import json
import math
import os
import struct as _struct
import sys
import time
from decimal import Decimal

os.environ["TZ"] = "UTC"
time.tzset()

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# Case registry
# ---------------------------------------------------------------------------
CASES = {}  # area -> list of case dicts (without results)


def case(area, name, sql, tables=None, ansi=False, ordered=False):
    lst = CASES.setdefault(area, [])
    assert all(c["name"] != name for cs in CASES.values() for c in cs), name
    lst.append({"name": name, "tables": tables or {}, "sql": sql,
                "ansi": ansi, "ordered": ordered})


def both(area, name, sql, tables=None, ordered=False):
    """Register the same query in non-ANSI and ANSI mode."""
    case(area, name, sql, tables, ansi=False, ordered=ordered)
    case(area, name + "_ansi", sql, tables, ansi=True, ordered=ordered)


def tbl(columns, rows):
    return {"columns": [list(c) for c in columns], "rows": [list(r) for r in rows]}


# ---------------------------------------------------------------------------
# Shared input tables (scalar types only)
# ---------------------------------------------------------------------------
DT = tbl([("d", "date"), ("ts", "timestamp"), ("s", "string"), ("n", "bigint")], [
    ["2024-03-05", "2024-03-05 13:04:05", "2024-03-05", 1709643845],
    ["2024-02-29", "2024-02-29 23:59:59.123456", "2024-02-29 23:59:59", 0],
    ["2023-12-31", "2023-12-31 00:00:00", "2023-12-31", 1704067199],
    ["2024-01-01", "2024-01-01 00:00:00.5", "not a date", 1704067200],
    ["2023-01-31", "2023-01-31 12:00:00", " 2023-01-31 ", -1],
    ["1970-01-01", "1970-01-01 00:00:00", "", 86400],
    ["2000-02-29", "2000-02-29 06:30:15.25", "2000-02-29T06:30:15", 951805815],
    ["2021-01-03", "2021-01-03 18:45:00", "2021-1-3", 1609699500],
    [None, None, None, None],
])
T_DT = {"t": DT}

FMT = tbl([("s", "string")], [
    ["05/03/2024"], ["31/12/2023"], ["29/02/2023"], ["29/02/2024"], ["abc"], [""], [None],
])

TSFMT = tbl([("s", "string")], [
    ["2024-03-05 13:04:05"], ["05-03-2024 01:04:05 PM"], ["2024/03/05"], ["garbage"], [None],
])

TWO_TS = tbl([("a", "timestamp"), ("b", "timestamp")], [
    ["2024-03-05 10:00:00", "2024-03-05 11:30:59"],
    ["2024-03-05 10:00:00", "2024-03-04 09:59:00"],
    ["2023-12-31 23:59:59", "2024-01-01 00:00:01"],
    ["2024-01-31 00:00:00", "2024-02-29 00:00:00"],
    ["2020-02-29 12:00:00", "2024-02-28 12:00:00"],
    [None, "2024-01-01 00:00:00"],
])

TWO_D = tbl([("a", "date"), ("b", "date")], [
    ["2024-03-05", "2024-03-01"],
    ["2024-01-31", "2024-02-29"],
    ["2023-12-31", "2024-01-01"],
    ["2024-02-29", "2023-02-28"],
    ["2024-03-31", "2024-02-29"],
    [None, "2024-01-01"],
])

STR = tbl([("id", "int"), ("s", "string")], [
    [1, "hello WORLD foo-bar"],
    [2, "  padded  "],
    [3, ""],
    [4, None],
    [5, "MiXeD Case"],
    [6, "a,b,,c"],
    [7, "ünïcödé"],
    [8, "tab\there"],
    [9, "100"],
    [10, "abc123def456"],
])
T_STR = {"t": STR}

LIKE_T = tbl([("s", "string")], [
    ["abc"], ["ABC"], ["a_c"], ["a%c"], ["axc"], ["a\\c"], [""], [None], ["abcabc"],
])

JS = tbl([("id", "int"), ("j", "string")], [
    [1, '{"a": 1, "b": "x", "c": {"d": [10, 20, 30]}, "e": null}'],
    [2, '{"a": "2", "b": [1, 2], "c": {"d": []}}'],
    [3, '{"a": 1.5, "arr": [{"name": "p", "n": 1}, {"name": "q", "n": 2}]}'],
    [4, 'not json'],
    [5, ''],
    [6, None],
    [7, '[1, 2, 3]'],
    [8, '{"A": 9, "a b": 3, "k": {"x": true}}'],
])
T_JS = {"t": JS}

SALES = tbl([("region", "string"), ("product", "string"), ("amount", "decimal(10,2)"),
             ("qty", "int"), ("price", "double"), ("flag", "boolean"), ("ts", "timestamp")], [
    ["east", "apple", "10.50", 3, 1.5, True, "2024-01-01 10:00:00"],
    ["east", "pear", "20.00", 1, 2.25, False, "2024-01-02 11:00:00"],
    ["east", "apple", None, 5, None, None, "2024-01-03 12:00:00"],
    ["west", "apple", "7.25", None, 0.5, True, "2024-01-01 09:00:00"],
    ["west", "kiwi", "100.00", 2, 10.0, True, "2024-01-04 08:00:00"],
    ["west", "kiwi", "0.01", 7, 3.0, False, None],
    ["north", None, None, None, None, None, "2024-01-05 00:00:00"],
    [None, "apple", "1.00", 1, 1.0, True, "2024-01-06 00:00:00"],
])
T_SALES = {"sales": SALES}

NUMS = tbl([("x", "int")], [[i] for i in range(1, 10)])

CUST = tbl([("CUST_ID", "bigint"), ("Name", "string"), ("amount", "decimal(10,2)"),
            ("a", "int"), ("b", "int")], [
    [1, "alice", "10.00", 1, None],
    [2, "Bob", "5.50", None, 2],
    [3, None, None, 3, 4],
])
T_CUST = {"t": CUST}

JA = tbl([("id", "int"), ("x", "string")], [
    [1, "a1"], [2, "a2"], [2, "a2b"], [3, "a3"], [None, "anull"],
])
JB = tbl([("id", "int"), ("y", "string")], [
    [2, "b2"], [2, "b2b"], [3, "b3"], [4, "b4"], [None, "bnull"],
])
JC = tbl([("id", "int"), ("z", "string")], [
    [1, "c1"], [2, "c2"], [4, "c4"],
])
T_J = {"a": JA, "b": JB}
T_J3 = {"a": JA, "b": JB, "c": JC}
K2A = tbl([("k1", "int"), ("k2", "string"), ("v", "int")], [
    [1, "x", 10], [1, "y", 11], [2, "x", 12], [None, "x", 13],
])
K2B = tbl([("k1", "int"), ("k2", "string"), ("w", "int")], [
    [1, "x", 20], [2, "y", 21], [2, "x", 22], [2, "x", 23], [None, "x", 24],
])
T_K2 = {"a": K2A, "b": K2B}
UPA = tbl([("ID", "int"), ("v", "string")], [[1, "p"], [2, "q"]])
UPB = tbl([("id", "int"), ("w", "string")], [[2, "r"], [3, "s"]])

CASTS = tbl([("s", "string")], [
    [""], ["abc"], [" 12 "], ["1.9"], ["-7"], ["2147483648"], ["1e3"], ["true"], ["yes"],
    ["1"], ["t"], ["0"], ["NaN"], ["Infinity"], ["2024-02-30"], ["2024-02-29"], [None],
])
T_CASTS = {"t": CASTS}

NUMT = tbl([("id", "bigint"), ("i", "int"), ("d", "double"), ("m", "decimal(10,3)"), ("s", "string")], [
    [5, 2147483647, 1.9, "12.345", "5"],
    [-5, -2147483648, -1.5, "-0.005", "11"],
    [0, 0, 0.1, "0.000", "9"],
    [10, 7, 1e10, "999.999", "abc"],
    [None, None, None, None, None],
    [3, -3, float("nan"), "1.500", "1e1"],
])
T_NUM = {"t": NUMT}

# ---------------------------------------------------------------------------
# DATETIME
# ---------------------------------------------------------------------------
A = "datetime"
for fn in ["year", "month", "day", "dayofmonth", "quarter", "dayofweek", "dayofyear",
           "weekofyear", "weekday"]:
    case(A, f"{fn}_of_date", f"SELECT d, {fn}(d) AS r FROM t", T_DT)
for fn in ["year", "month", "hour", "minute", "second"]:
    case(A, f"{fn}_of_ts", f"SELECT ts, {fn}(ts) AS r FROM t", T_DT)
case(A, "hour_of_string", "SELECT hour('2024-03-05 13:04:05') AS h, minute('13:04:05') AS m, second('2024-03-05T13:04:59.9') AS s")
case(A, "extract_fields", "SELECT extract(YEAR FROM ts) AS y, extract(DOW FROM d) AS dow, extract(SECOND FROM ts) AS sec, date_part('doy', d) AS doy FROM t", T_DT)
case(A, "date_of_string", "SELECT s, date(s) AS r FROM t", T_DT)
case(A, "date_of_string_ansi", "SELECT s, date(s) AS r FROM t WHERE s = 'not a date'", T_DT, ansi=True)
case(A, "date_of_ts", "SELECT date(ts) AS r FROM t", T_DT)
case(A, "timestamp_of_string", "SELECT s, timestamp(s) AS r FROM t", T_DT)
case(A, "timestamp_of_date", "SELECT timestamp(d) AS r FROM t", T_DT)
case(A, "to_date_default", "SELECT s, to_date(s) AS r FROM t", T_DT)
case(A, "to_date_default_ansi_bad", "SELECT to_date(s) AS r FROM t WHERE s = 'not a date'", T_DT, ansi=True)
case(A, "to_date_fmt", "SELECT s, to_date(s, 'dd/MM/yyyy') AS r FROM t", {"t": FMT})
case(A, "to_date_fmt_ansi_bad", "SELECT to_date(s, 'dd/MM/yyyy') AS r FROM t WHERE s = 'abc'", {"t": FMT}, ansi=True)
case(A, "to_date_fmt_ansi_invalid_day", "SELECT to_date(s, 'dd/MM/yyyy') AS r FROM t WHERE s = '29/02/2023'", {"t": FMT}, ansi=True)
case(A, "to_timestamp_default", "SELECT s, to_timestamp(s) AS r FROM t", T_DT)
case(A, "to_timestamp_fmt", "SELECT s, to_timestamp(s, 'yyyy-MM-dd HH:mm:ss') AS r FROM t", {"t": TSFMT})
case(A, "to_timestamp_fmt_12h", "SELECT s, to_timestamp(s, 'dd-MM-yyyy hh:mm:ss a') AS r FROM t", {"t": TSFMT})
case(A, "to_timestamp_fmt_slash", "SELECT s, to_timestamp(s, 'yyyy/MM/dd') AS r FROM t", {"t": TSFMT})
case(A, "to_timestamp_fmt_ansi_bad", "SELECT to_timestamp(s, 'yyyy-MM-dd HH:mm:ss') AS r FROM t WHERE s = 'garbage'", {"t": TSFMT}, ansi=True)
case(A, "to_timestamp_fraction", "SELECT to_timestamp('2024-03-05 13:04:05.123456') AS a, to_timestamp('2024-03-05 13:04:05.1') AS b, to_timestamp('2024-03-05') AS c")
case(A, "try_to_timestamp", "SELECT try_to_timestamp('garbage') AS a, try_to_timestamp('2024-01-02', 'yyyy-MM-dd') AS b", ansi=True)
case(A, "datediff_days", "SELECT a, b, datediff(a, b) AS r FROM t", {"t": TWO_D})
case(A, "datediff_ts_args", "SELECT datediff(b, a) AS r FROM t", {"t": TWO_TS})
for unit in ["MINUTE", "HOUR", "DAY", "SECOND", "MONTH", "YEAR", "WEEK"]:
    case(A, f"datediff_unit_{unit.lower()}", f"SELECT a, b, datediff({unit}, a, b) AS r FROM t", {"t": TWO_TS})
case(A, "timestampdiff_minute", "SELECT timestampdiff(MINUTE, a, b) AS r FROM t", {"t": TWO_TS})
case(A, "timestampdiff_month_dates", "SELECT timestampdiff(MONTH, a, b) AS r FROM t", {"t": TWO_D})
case(A, "timestampadd_hour", "SELECT timestampadd(HOUR, 5, a) AS r FROM t", {"t": TWO_TS})
case(A, "dateadd_unit", "SELECT dateadd(DAY, 3, a) AS r FROM t", {"t": TWO_TS})
case(A, "date_add", "SELECT d, date_add(d, 1) AS p1, date_add(d, -1) AS m1, date_add(d, 366) AS p366 FROM t", T_DT)
case(A, "date_sub", "SELECT d, date_sub(d, 1) AS r FROM t", T_DT)
case(A, "date_add_string_arg", "SELECT date_add('2024-02-28', 1) AS a, date_sub('2024-03-01', 1) AS b")
case(A, "date_add_ts_arg", "SELECT date_add(ts, 1) AS r FROM t", T_DT)
case(A, "date_plus_int", "SELECT d + 1 AS a, d - 1 AS b FROM t", T_DT)
case(A, "date_minus_date", "SELECT a - b AS r FROM t", {"t": TWO_D})
case(A, "add_months", "SELECT d, add_months(d, 1) AS p1, add_months(d, -1) AS m1, add_months(d, 12) AS p12 FROM t", T_DT)
case(A, "add_months_month_end", "SELECT add_months(DATE '2024-01-31', 1) AS a, add_months(DATE '2024-02-29', 12) AS b, add_months(DATE '2023-04-30', 1) AS c, add_months(DATE '2024-03-31', -1) AS d")
case(A, "months_between", "SELECT a, b, months_between(a, b) AS r, months_between(a, b, false) AS nr FROM t", {"t": TWO_D})
case(A, "months_between_ts", "SELECT months_between(b, a) AS r FROM t", {"t": TWO_TS})
case(A, "last_day", "SELECT d, last_day(d) AS r FROM t", T_DT)
case(A, "next_day", "SELECT d, next_day(d, 'Mon') AS mon, next_day(d, 'FRIDAY') AS fri, next_day(d, 'su') AS su FROM t", T_DT)
case(A, "next_day_bad_name", "SELECT next_day(DATE '2024-03-05', 'xyz') AS r")
case(A, "next_day_bad_name_ansi", "SELECT next_day(DATE '2024-03-05', 'xyz') AS r", ansi=True)
case(A, "trunc_date", "SELECT d, trunc(d, 'MM') AS mm, trunc(d, 'YEAR') AS y, trunc(d, 'Q') AS q, trunc(d, 'WEEK') AS w, trunc(d, 'bogus') AS bad FROM t", T_DT)
case(A, "date_trunc_ts", "SELECT ts, date_trunc('MONTH', ts) AS mon, date_trunc('week', ts) AS wk, date_trunc('hour', ts) AS hr, date_trunc('DAY', ts) AS dy, date_trunc('year', ts) AS yr, date_trunc('QUARTER', ts) AS q, date_trunc('minute', ts) AS mi FROM t", T_DT)
case(A, "date_trunc_of_date", "SELECT date_trunc('MONTH', d) AS r FROM t", T_DT)
case(A, "unix_timestamp_of_ts", "SELECT ts, unix_timestamp(ts) AS r FROM t", T_DT)
case(A, "unix_timestamp_of_date", "SELECT unix_timestamp(d) AS r FROM t", T_DT)
case(A, "unix_timestamp_string_default_fmt", "SELECT s, unix_timestamp(s) AS r FROM t", T_DT)
case(A, "unix_timestamp_string_fmt", "SELECT s, unix_timestamp(s, 'dd/MM/yyyy') AS r FROM t", {"t": FMT})
case(A, "to_unix_timestamp", "SELECT to_unix_timestamp('2024-03-05', 'yyyy-MM-dd') AS r")
case(A, "from_unixtime_default", "SELECT n, from_unixtime(n) AS r FROM t", T_DT)
case(A, "from_unixtime_fmt", "SELECT from_unixtime(n, 'yyyy-MM-dd') AS a, from_unixtime(n, 'HH:mm') AS b FROM t", T_DT)
case(A, "timestamp_seconds", "SELECT timestamp_seconds(n) AS r FROM t", T_DT)
case(A, "timestamp_millis_micros", "SELECT timestamp_millis(1709643845123) AS a, timestamp_micros(1709643845123456) AS b, unix_millis(TIMESTAMP '2024-03-05 13:04:05.123') AS c, unix_seconds(TIMESTAMP '1969-12-31 23:59:59') AS e")
case(A, "cast_bigint_to_timestamp", "SELECT CAST(n AS TIMESTAMP) AS r FROM t", T_DT)
case(A, "cast_ts_to_bigint", "SELECT CAST(ts AS BIGINT) AS r, CAST(ts AS DOUBLE) AS dbl FROM t", T_DT)
case(A, "make_date", "SELECT make_date(2024, 2, 29) AS a, make_date(2023, 2, 29) AS b, make_date(2024, 13, 1) AS c")
case(A, "make_date_ansi_invalid", "SELECT make_date(2023, 2, 29) AS b", ansi=True)
case(A, "make_timestamp", "SELECT make_timestamp(2024, 3, 5, 13, 4, 5.5) AS a, make_timestamp(2024, 3, 5, 13, 4, 60) AS b")
case(A, "date_from_unix_date", "SELECT date_from_unix_date(19787) AS a, unix_date(DATE '2024-03-05') AS b")
PATTERNS = [
    ("yyyyMMdd", "yyyyMMdd"), ("yyyy_MM_dd", "yyyy-MM-dd"), ("MM_dd_yyyy_HH_mm_ss", "MM-dd-yyyy HH:mm:ss"),
    ("dd_MM_yyyy", "dd/MM/yyyy"), ("EEEE", "EEEE"), ("EEE", "EEE"), ("MMM", "MMM"), ("MMMM", "MMMM"),
    ("HH_mm", "HH:mm"), ("hh_mm_a", "hh:mm a"), ("iso_T", "yyyy-MM-dd\\'T\\'HH:mm:ss"), ("iso_T_doubled_quotes", "yyyy-MM-dd''T''HH:mm:ss"), ("D", "D"),
    ("yy", "yy"), ("y", "y"), ("M_d", "M/d"), ("SSS", "HH:mm:ss.SSS"), ("SSSSSS", "ss.SSSSSS"),
    ("E", "E"), ("Q", "Q"), ("a", "a"), ("k", "k"), ("XXX", "XXX"), ("Z", "Z"), ("z", "z"),
    ("literal_text", "''Day'' D ''of'' yyyy"), ("w", "w"), ("W", "W"),
]
for nm, pat in PATTERNS:
    case(A, f"date_format_{nm}", f"SELECT ts, date_format(ts, '{pat}') AS r FROM t", T_DT)
case(A, "date_format_u", "SELECT date_format(ts, 'u') AS r FROM t", T_DT)
case(A, "date_format_u_ansi", "SELECT date_format(ts, 'u') AS r FROM t", T_DT, ansi=True)
case(A, "date_format_e", "SELECT date_format(ts, 'e') AS r FROM t", T_DT)
case(A, "date_format_YYYY", "SELECT date_format(ts, 'YYYY') AS r FROM t", T_DT)
case(A, "date_format_of_date", "SELECT date_format(d, 'yyyyMMdd') AS r FROM t", T_DT)
case(A, "date_format_of_string", "SELECT date_format('2024-03-05', 'dd.MM.yyyy') AS a, date_format('garbage', 'yyyy') AS b")
case(A, "timestamp_literal_compare", "SELECT ts FROM t WHERE ts >= TIMESTAMP '2024-01-01 00:00:00' ORDER BY ts", T_DT, ordered=True)
case(A, "date_compare_string", "SELECT d FROM t WHERE d > '2024-01-01' ORDER BY d", T_DT, ordered=True)
case(A, "date_between", "SELECT d FROM t WHERE d BETWEEN '2023-12-31' AND '2024-02-29' ORDER BY d", T_DT, ordered=True)
case(A, "ts_plus_interval", "SELECT ts + INTERVAL 1 DAY AS a, ts - INTERVAL '2' HOUR AS b, ts + INTERVAL 1 MONTH AS c FROM t", T_DT)
case(A, "date_plus_interval", "SELECT d + INTERVAL 1 MONTH AS a, d + INTERVAL '3' DAY AS b FROM t", T_DT)
case(A, "ts_minus_ts", "SELECT b - a AS r FROM t", {"t": TWO_TS})
case(A, "convert_timezone", "SELECT from_utc_timestamp(TIMESTAMP '2024-03-05 13:00:00', 'America/New_York') AS a, to_utc_timestamp(TIMESTAMP '2024-03-05 13:00:00', 'Asia/Kolkata') AS b")
case(A, "date_format_ts_string_names", "SELECT date_format(ts, 'yyyy-MM-dd'), to_date(s), year(d) FROM t", T_DT)
case(A, "dayname_monthname", "SELECT dayname(d) AS a, monthname(d) AS b FROM t", T_DT)

# ---------------------------------------------------------------------------
# STRINGS
# ---------------------------------------------------------------------------
A = "strings"
case(A, "concat", "SELECT concat(s, '-', id) AS r FROM t", T_STR)
case(A, "concat_null", "SELECT concat('a', NULL, 'b') AS r, concat() AS e")
case(A, "concat_ws", "SELECT concat_ws(',', s, 'x', NULL, id) AS r FROM t", T_STR)
case(A, "concat_ws_array", "SELECT concat_ws('|', array('a', NULL, 'c'), 'd') AS r, concat_ws(NULL, 'a') AS n")
case(A, "pipe_concat", "SELECT s || '!' AS r, 'a' || 1 || NULL AS n FROM t", T_STR)
case(A, "upper_lower", "SELECT upper(s) AS u, lower(s) AS l, ucase(s) AS u2, lcase(s) AS l2 FROM t", T_STR)
case(A, "lower_null", "SELECT lower(NULL) AS r, upper(NULL) AS u")
case(A, "initcap", "SELECT initcap('hello WORLD foo-bar') AS a, initcap(s) AS b FROM t", T_STR)
case(A, "trim_family", "SELECT '[' || trim(s) || ']' AS t, '[' || ltrim(s) || ']' AS l, '[' || rtrim(s) || ']' AS r FROM t", T_STR)
case(A, "trim_chars", "SELECT trim(BOTH 'x' FROM 'xxaxbxx') AS a, trim(LEADING 'x' FROM 'xxab') AS b, trim(TRAILING 'x' FROM 'abxx') AS c, trim('xy', 'yxaxy') AS d, btrim('  a  ') AS e")
case(A, "trim_tab_newline", "SELECT '[' || trim('\\t a \\n') || ']' AS r")
case(A, "lpad_rpad", "SELECT lpad(s, 8, '*') AS l, rpad(s, 8, '*') AS r, lpad(s, 2) AS l2, lpad('ab', 5, 'xyz') AS l3, rpad('ab', 0, 'x') AS r0, lpad('ab', -1, 'x') AS neg FROM t", T_STR)
case(A, "lpad_default_pad", "SELECT lpad('7', 3) AS a, rpad('7', 3) AS b")
case(A, "substring_basic", "SELECT s, substring(s, 1, 3) AS a, substring(s, 3) AS b, substr(s, 0, 2) AS c FROM t", T_STR)
case(A, "substring_negative", "SELECT substring('abcdef', -3) AS a, substring('abcdef', -3, 2) AS b, substr('abcdef', -10, 3) AS c, substring('abcdef', 2, -1) AS d, substring('abcdef', 10) AS e, substring('abcdef', -7, 3) AS f")
case(A, "substring_from_for", "SELECT substring('abcdef' FROM 2 FOR 3) AS a, substring('abcdef' FROM 4) AS b")
case(A, "replace_2_3_args", "SELECT replace(s, 'o') AS two, replace(s, 'o', '0') AS three, replace(s, '', 'x') AS empty FROM t", T_STR)
case(A, "regexp_replace", "SELECT regexp_replace(s, '[0-9]+', '#') AS a, regexp_replace(s, '(\\\\w)(\\\\w*)', '$2$1') AS b, regexp_replace(s, '\\\\s+', '') AS c FROM t", T_STR)
case(A, "regexp_extract", "SELECT s, regexp_extract(s, '([a-z]+)([0-9]+)', 0) AS g0, regexp_extract(s, '([a-z]+)([0-9]+)', 1) AS g1, regexp_extract(s, '([a-z]+)([0-9]+)', 2) AS g2, regexp_extract(s, '([a-z]+)([0-9]+)') AS gdef FROM t", T_STR)
case(A, "regexp_extract_bad_group", "SELECT regexp_extract('abc', '(a)', 3) AS r")
case(A, "regexp_extract_all", "SELECT regexp_extract_all('abc123def456', '([0-9]+)', 1) AS r, regexp_extract_all('a1b22', '[0-9]+', 0) AS r0")
case(A, "regexp_like_rlike", "SELECT s, regexp_like(s, '^[a-z]') AS a, s RLIKE 'o' AS b, s REGEXP '[0-9]$' AS c, rlike(s, '(?i)^mixed') AS d FROM t", T_STR)
case(A, "regexp_count_instr_substr", "SELECT regexp_count('abcabc', 'b') AS a, regexp_instr('abc123', '[0-9]') AS b, regexp_substr('abc123def', '[0-9]+') AS c, regexp_substr('abc', '[0-9]+') AS d")
case(A, "split_basic", "SELECT s, split(s, ',') AS a, split(s, '') AS b FROM t WHERE id IN (3, 6, 9)", T_STR)
case(A, "split_limit", "SELECT split('a,b,,c,', ',') AS a, split('a,b,,c,', ',', 2) AS b, split('a,b,,c,', ',', -1) AS c, split('a,b,,c,', ',', 0) AS d, split('a.b', '.') AS dotregex, split('a|b', '\\\\|') AS pipe")
case(A, "length_family", "SELECT s, length(s) AS a, len(s) AS b, char_length(s) AS c, character_length(s) AS d, octet_length(s) AS o, bit_length(s) AS bl FROM t", T_STR)
case(A, "instr_locate", "SELECT s, instr(s, 'o') AS a, locate('o', s) AS b, locate('o', s, 6) AS c, position('o' IN s) AS d, instr(s, '') AS e FROM t", T_STR)
case(A, "left_right", "SELECT left(s, 3) AS l, right(s, 3) AS r, left(s, 0) AS l0, right(s, -1) AS rn, left(s, 100) AS lbig FROM t", T_STR)
case(A, "reverse_repeat", "SELECT reverse(s) AS r, repeat(s, 2) AS rp, repeat('ab', 0) AS r0, repeat('ab', -1) AS rneg FROM t", T_STR)
case(A, "translate", "SELECT translate('AaBbCc', 'abc', '123') AS a, translate('abcdef', 'abc', 'x') AS b, translate(s, 'lo', 'LO') AS c FROM t", T_STR)
case(A, "format_number", "SELECT format_number(1234567.891, 2) AS a, format_number(0.5, 0) AS b, format_number(1.5, 0) AS c2, format_number(-1234.5, 1) AS c, format_number(12332.123456, '##,###.##') AS d, format_number(5, 3) AS e, format_number(CAST(NULL AS DOUBLE), 2) AS f")
case(A, "format_string_printf", "SELECT format_string('%s-%d-%.2f', 'a', 5, 3.14159D) AS a, printf('%05d', 42) AS b, format_string('%10s|', 'x') AS c, format_string('%-5s|', 'x') AS d, format_string('%s', NULL) AS e, printf('%x', 255) AS f, format_string('%,d', 1234567) AS g")
case(A, "hashes", "SELECT md5(s) AS md5, sha1(s) AS sha1, sha2(s, 256) AS sha256, sha2(s, 0) AS sha0, sha2(s, 512) AS sha512, crc32(s) AS crc FROM t WHERE id IN (1, 3, 4)", T_STR)
case(A, "sha2_bad_bits", "SELECT sha2('abc', 7) AS r")
case(A, "hash_xxhash", "SELECT hash('abc') AS h, xxhash64('abc') AS x, hash(1) AS h1, hash(NULL) AS hn")
case(A, "base64_unbase64", "SELECT base64(s) AS b, unbase64(base64(s)) AS u, CAST(unbase64(base64(s)) AS STRING) AS rt FROM t WHERE id IN (1, 3, 7)", T_STR)
case(A, "unbase64_invalid", "SELECT unbase64('@@@') AS r")
case(A, "hex_unhex", "SELECT hex('abc') AS a, hex(255) AS b, hex(-1) AS c, unhex('616263') AS d, CAST(unhex('616263') AS STRING) AS e, unhex('zz') AS f")
case(A, "ascii_chr", "SELECT ascii(s) AS a, chr(65) AS b, char(97) AS c, chr(256 + 66) AS d FROM t", T_STR)
case(A, "string_comparisons", "SELECT 'a' < 'b' AS a, 'B' < 'a' AS b, 'abc' = 'ABC' AS c, '' < 'a' AS d, 'a ' = 'a' AS e, '10' < '9' AS f")
case(A, "like_basic", "SELECT s, s LIKE 'a%' AS p, s LIKE 'a_c' AS u, s LIKE '%bc' AS suf, s NOT LIKE 'a%' AS np FROM t", {"t": LIKE_T})
case(A, "like_escape_default", "SELECT s FROM t WHERE s LIKE 'a\\\\_c'", {"t": LIKE_T})
case(A, "like_escape_percent", "SELECT s FROM t WHERE s LIKE 'a\\\\%c'", {"t": LIKE_T})
case(A, "like_escape_clause", "SELECT s FROM t WHERE s LIKE 'a!_c' ESCAPE '!'", {"t": LIKE_T})
case(A, "like_backslash_literal", "SELECT s FROM t WHERE s LIKE 'a\\\\\\\\c'", {"t": LIKE_T})
case(A, "ilike", "SELECT s, s ILIKE 'abc' AS a, s ILIKE 'A%' AS b FROM t", {"t": LIKE_T})
case(A, "like_any_all", "SELECT s FROM t WHERE s LIKE ANY ('a_c', 'ABC')", {"t": LIKE_T})
case(A, "backslash_escapes", "SELECT 'a\\-b' AS dash, '\\t' AS tab, '\\\\' AS bslash, 'a\\nb' AS nl, '\\'' AS q, '\\%' AS pct, '\\_' AS us, 'x\\y' AS xy, '\\u0041' AS uni")
case(A, "backslash_lengths", "SELECT length('a\\-b') AS dash, length('\\t') AS tab, length('\\\\') AS bslash, length('\\%') AS pct")
case(A, "double_quoted_literal", 'SELECT "double quoted text" AS a, "it\'s" AS b, "a \\"q\\"" AS c, \'x\' "y" AS adjacent')
case(A, "double_quoted_unaliased", 'SELECT "hello"')
case(A, "raw_string_literal", "SELECT r'a\\-b\\t' AS r, length(r'\\\\') AS l")
case(A, "string_null_ops", "SELECT NULL || 'a' AS a, length(NULL) AS b, concat_ws('-', NULL) AS c, coalesce(NULL, '') AS d")
case(A, "space_func", "SELECT '[' || space(3) || ']' AS r, space(0) AS z")
case(A, "overlay_elt_field", "SELECT overlay('abcdef' PLACING 'XY' FROM 3) AS o, elt(2, 'a', 'b', 'c') AS e, find_in_set('b', 'a,b,c') AS fi")
case(A, "startswith_endswith_contains", "SELECT s, startswith(s, 'hel') AS a, endswith(s, 'bar') AS b, contains(s, 'WORLD') AS c FROM t", T_STR)
case(A, "soundex_levenshtein", "SELECT soundex('Robert') AS s, levenshtein('kitten', 'sitting') AS l")
case(A, "substring_index", "SELECT substring_index('a.b.c', '.', 2) AS a, substring_index('a.b.c', '.', -1) AS b, substring_index('a.b.c', '.', 0) AS c")
case(A, "format_string_decimal_f", "SELECT format_string('%.2f', 3.14159) AS a")
case(A, "string_to_number_arith", "SELECT '5' + 1 AS a, '1.5' * 2 AS b, 'x' + 1 AS c")
case(A, "string_to_number_arith_ansi", "SELECT 'x' + 1 AS c", ansi=True)
case(A, "mask_func", "SELECT mask('AbCd-123') AS m")
case(A, "collate_default_compare", "SELECT 'a' = 'A' AS eq, lower('ÄÖÜ') AS l, upper('straße') AS u")
case(A, "to_char_number", "SELECT to_char(454, '999') AS a, to_char(12454.8, '99,999.9') AS b")
case(A, "string_agg_like_listagg", "SELECT array_join(array_sort(collect_list(s)), ',') AS r FROM t", T_STR)
case(A, "nvl_nullif_family", "SELECT nvl(s, 'dflt') AS a, nullif(s, '') AS b, ifnull(s, '?') AS c, nvl2(s, 'has', 'none') AS d FROM t WHERE id IN (3, 4, 5)", T_STR)
case(A, "quote_in_literal", "SELECT 'it''s' AS a, length('it''s') AS l")

# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------
A = "json"
for nm, path in [("a", "$.a"), ("b", "$.b"), ("c_d", "$.c.d"), ("c_d_0", "$.c.d[0]"), ("c_d_star", "$.c.d[*]"),
                 ("bracket_a", "$[\\'a\\']"), ("missing", "$.zzz"), ("root", "$"), ("arr_0", "$[0]"),
                 ("arr_name", "$.arr[1].name"), ("arr_star_name", "$.arr[*].name"), ("case_A", "$.A"),
                 ("space_key", "$[\\'a b\\']"), ("obj", "$.c"), ("null_val", "$.e"), ("bool", "$.k.x"),
                 ("bad_path", "a")]:
    case(A, f"get_json_object_{nm}", f"SELECT id, get_json_object(j, '{path}') AS r FROM t", T_JS)
case(A, "json_tuple", "SELECT id, json_tuple(j, 'a', 'b', 'zzz') FROM t", T_JS)
case(A, "json_tuple_aliased", "SELECT id, json_tuple(j, 'a', 'b') AS (x, y) FROM t", T_JS)
case(A, "json_tuple_lateral_view", "SELECT id, jt.a, jt.b FROM t LATERAL VIEW json_tuple(j, 'a', 'b') jt AS a, b", T_JS)
case(A, "from_json_ddl", "SELECT id, from_json(j, 'a INT, b STRING') AS r FROM t", T_JS)
case(A, "from_json_ddl_fields", "SELECT id, from_json(j, 'a INT, b STRING').a AS a, from_json(j, 'a INT, b STRING').b AS b FROM t", T_JS)
case(A, "from_json_struct_form", "SELECT id, from_json(j, 'struct<a:double,c:struct<d:array<int>>>') AS r FROM t", T_JS)
case(A, "from_json_array_struct", "SELECT from_json('[{\"name\": \"p\", \"n\": 1}, {\"name\": \"q\"}]', 'array<struct<name: string, n: int>>') AS r")
case(A, "from_json_array_int", "SELECT id, from_json(j, 'array<int>') AS r FROM t WHERE id IN (4, 7)", T_JS)
case(A, "from_json_map", "SELECT from_json('{\"x\": 1, \"y\": 2}', 'map<string,int>') AS r, from_json('{\"x\": \"nope\"}', 'map<string,int>') AS bad")
case(A, "from_json_invalid", "SELECT from_json('not json', 'a INT') AS r, from_json('{\"a\": \"x\"}', 'a INT') AS badtype, from_json(NULL, 'a INT') AS n")
case(A, "from_json_invalid_ansi", "SELECT from_json('not json', 'a INT') AS r", ansi=True)
case(A, "from_json_failfast", "SELECT from_json('not json', 'a INT', map('mode', 'FAILFAST')) AS r")
case(A, "from_json_case_sensitive_keys", "SELECT from_json('{\"A\": 1, \"a\": 2}', 'a INT') AS r, from_json('{\"A\": 1}', 'a INT') AS r2")
case(A, "from_json_unaliased_name", "SELECT from_json(j, 'a INT') FROM t WHERE id = 1", T_JS)
case(A, "from_json_nested_access", "SELECT from_json(j, 'arr array<struct<name:string,n:int>>').arr[0].name AS r FROM t WHERE id = 3", T_JS)
case(A, "from_json_string_to_int_coercion", "SELECT from_json('{\"a\": \"2\", \"b\": 3}', 'a INT, b STRING') AS r")
case(A, "from_json_float_to_int", "SELECT from_json('{\"a\": 1.5}', 'a INT') AS r, from_json('{\"a\": 1}', 'a DOUBLE') AS r2")
case(A, "from_json_timestamp_date", "SELECT from_json('{\"t\": \"2024-03-05T13:04:05.123Z\", \"d\": \"2024-03-05\"}', 't TIMESTAMP, d DATE') AS r")
case(A, "to_json_struct", "SELECT to_json(named_struct('a', 1, 'b', 'x', 'c', CAST(NULL AS INT))) AS r")
case(A, "to_json_array", "SELECT to_json(array(1, 2, NULL)) AS a, to_json(array(named_struct('k', 'v'))) AS b")
case(A, "to_json_map", "SELECT to_json(map('a', 1, 'b', 2)) AS r")
case(A, "to_json_types", "SELECT to_json(named_struct('d', DATE '2024-03-05', 'ts', TIMESTAMP '2024-03-05 13:04:05', 'dec', 1.50BD, 'dbl', 1.0D, 'f', false, 's', 'q\"x')) AS r")
case(A, "to_json_unaliased_name", "SELECT to_json(named_struct('a', 1))")
case(A, "to_json_struct_of_row", "SELECT to_json(struct(*)) AS r FROM t WHERE id IN (1, 6)", T_JS)
case(A, "schema_of_json", "SELECT schema_of_json('{\"a\": 1, \"b\": [\"x\"], \"c\": {\"d\": 1.5}}') AS r")
case(A, "schema_of_json_array", "SELECT schema_of_json('[{\"a\": 1}]') AS r")
case(A, "json_array_length", "SELECT id, json_array_length(j) AS r FROM t", T_JS)
case(A, "json_object_keys", "SELECT id, json_object_keys(j) AS r FROM t", T_JS)
case(A, "colon_path_operator", "SELECT j:a AS r FROM t", T_JS)
case(A, "colon_path_operator_nested", "SELECT j:c.d[0] AS r FROM t", T_JS)
case(A, "parse_json_variant_get", "SELECT variant_get(parse_json('{\"a\": {\"b\": 5}}'), '$.a.b', 'int') AS r")
case(A, "try_parse_json", "SELECT try_parse_json('not json') IS NULL AS r")
case(A, "get_json_object_literal", "SELECT get_json_object('{\"a\":{\"b\":[1,{\"c\":\"deep\"}]}}', '$.a.b[1].c') AS r, get_json_object('{\"a\":1}', '$.a.b') AS r2, get_json_object('{\"a\":\"x\"}', '$.a') AS r3")
case(A, "get_json_object_unaliased_name", "SELECT get_json_object(j, '$.a') FROM t WHERE id = 1", T_JS)

# ---------------------------------------------------------------------------
# COLLECTIONS
# ---------------------------------------------------------------------------
A = "collections"
ARR_T = tbl([("id", "int"), ("s", "string")], [[1, "a,b,c"], [2, ""], [3, None], [4, "x"], [5, "b,a,b"]])
T_ARR = {"t": ARR_T}
case(A, "array_literal", "SELECT array(1, 2, 3) AS a, array() AS e, array(1, NULL) AS n, array('a', 1) AS mixed")
case(A, "array_unaliased_name", "SELECT array(1, 2), map('a', 1), struct(1, 'x'), named_struct('k', 1)")
case(A, "size_of_split", "SELECT id, size(split(s, ',')) AS r FROM t", T_ARR)
case(A, "size_null", "SELECT size(NULL) AS r, cardinality(CAST(NULL AS ARRAY<INT>)) AS c")
case(A, "size_null_ansi", "SELECT size(NULL) AS r", ansi=True)
case(A, "size_map", "SELECT size(map('a', 1, 'b', 2)) AS r, cardinality(array(1, 2, 3)) AS c")
case(A, "array_contains", "SELECT id, array_contains(split(s, ','), 'b') AS r FROM t", T_ARR)
case(A, "array_contains_null_elem", "SELECT array_contains(array(1, NULL), 2) AS a, array_contains(array(1, NULL), 1) AS b")
case(A, "array_contains_null_needle", "SELECT array_contains(array(1, 2), NULL) AS c")
case(A, "explode_select", "SELECT id, explode(split(s, ',')) FROM t", T_ARR)
case(A, "explode_select_alias", "SELECT id, explode(split(s, ',')) AS x FROM t", T_ARR)
case(A, "explode_empty_and_null", "SELECT explode(array()) AS x UNION ALL SELECT explode(CAST(NULL AS ARRAY<INT>))")
case(A, "posexplode_select", "SELECT id, posexplode(split(s, ',')) FROM t", T_ARR)
case(A, "posexplode_alias", "SELECT id, posexplode(split(s, ',')) AS (p, v) FROM t", T_ARR)
case(A, "explode_outer_select", "SELECT id, explode_outer(split(s, ',')) FROM t", T_ARR)
case(A, "explode_map", "SELECT explode(map('a', 1, 'b', 2))")
case(A, "explode_map_alias", "SELECT explode(map('a', 1, 'b', 2)) AS (k, v)")
case(A, "posexplode_map", "SELECT posexplode(map('a', 1))")
case(A, "inline_select", "SELECT inline(array(named_struct('a', 1, 'b', 'x'), named_struct('a', 2, 'b', 'y')))")
case(A, "inline_positional_struct", "SELECT inline(array(struct(1, 'x'), struct(2, 'y')))")
case(A, "lateral_view_explode", "SELECT id, x FROM t LATERAL VIEW explode(split(s, ',')) e AS x", T_ARR)
case(A, "lateral_view_explode_star", "SELECT * FROM t LATERAL VIEW explode(split(s, ',')) e AS x", T_ARR)
case(A, "lateral_view_no_alias", "SELECT * FROM t LATERAL VIEW explode(split(s, ',')) e", T_ARR)
case(A, "lateral_view_outer", "SELECT id, x FROM t LATERAL VIEW OUTER explode(CASE WHEN s = '' THEN array() ELSE split(s, ',') END) e AS x", T_ARR)
case(A, "lateral_view_outer_null_arrays", "SELECT id, x FROM t LATERAL VIEW OUTER explode(CASE WHEN s = '' THEN CAST(NULL AS ARRAY<STRING>) ELSE split(s, ',') END) e AS x", T_ARR)
case(A, "explode_outer_null_arrays", "SELECT id, explode_outer(CASE WHEN s = 'x' THEN CAST(NULL AS ARRAY<STRING>) ELSE split(s, ',') END) AS part FROM t", T_ARR)
case(A, "lateral_view_posexplode", "SELECT id, p, x FROM t LATERAL VIEW posexplode(split(s, ',')) e AS p, x", T_ARR)
case(A, "lateral_view_map", "SELECT id, k, v FROM t LATERAL VIEW explode(map('k1', id, 'k2', id * 10)) e AS k, v WHERE id < 3", T_ARR)
case(A, "lateral_view_two", "SELECT x, y FROM (SELECT 1 AS id) LATERAL VIEW explode(array(1, 2)) a AS x LATERAL VIEW explode(array('p', 'q')) b AS y")
case(A, "lateral_subquery_explode_from", "SELECT id, e.col FROM t, LATERAL explode(split(s, ',')) e WHERE id = 1", T_ARR)
case(A, "explode_table_valued", "SELECT * FROM explode(array(10, 20))")
case(A, "sequence_basic", "SELECT sequence(1, 5) AS a, sequence(5, 1) AS b, sequence(1, 10, 3) AS c, sequence(1, 1) AS d")
case(A, "sequence_bad_step", "SELECT sequence(1, 5, -1) AS r")
case(A, "sequence_dates", "SELECT sequence(DATE '2024-01-30', DATE '2024-02-02') AS a, sequence(DATE '2024-01-31', DATE '2024-05-01', INTERVAL 1 MONTH) AS b, sequence(DATE '2024-01-01', DATE '2024-01-15', INTERVAL 7 DAY) AS c")
case(A, "sequence_ts", "SELECT sequence(TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-01-01 03:00:00', INTERVAL 90 MINUTE) AS r")
case(A, "explode_sequence", "SELECT explode(sequence(1, 3)) AS n")
case(A, "struct_and_named_struct", "SELECT struct(id, s) AS a, named_struct('x', id, 'y', s) AS b, struct(id AS k, s) AS c FROM t WHERE id < 3", T_ARR)
case(A, "struct_field_access", "SELECT named_struct('a', 1, 'b', named_struct('c', 'deep')).b.c AS r, struct(1 AS x).x AS x")
case(A, "struct_star", "SELECT s.* FROM (SELECT named_struct('a', 1, 'b', 'x') AS s)")
case(A, "map_literal", "SELECT map('a', 1, 'b', 2) AS m, map() AS e, map_from_arrays(array('x', 'y'), array(1, 2)) AS fa, str_to_map('a:1,b:2') AS stm")
case(A, "map_dup_key", "SELECT map('a', 1, 'a', 2) AS m")
case(A, "map_null_key", "SELECT map(NULL, 1) AS m")
case(A, "map_access", "SELECT map('a', 1)['a'] AS hit, map('a', 1)['z'] AS miss, element_at(map('a', 1), 'z') AS ea_miss")
case(A, "map_access_ansi", "SELECT map('a', 1)['z'] AS miss", ansi=True)
case(A, "element_at_map_ansi", "SELECT element_at(map('a', 1), 'z') AS ea_miss", ansi=True)
case(A, "map_keys_values_entries", "SELECT map_keys(map('a', 1, 'b', 2)) AS k, map_values(map('a', 1, 'b', 2)) AS v, map_entries(map('a', 1)) AS e, map_contains_key(map('a', 1), 'a') AS c")
case(A, "map_concat_filter", "SELECT map_concat(map('a', 1), map('b', 2)) AS c, map_filter(map('a', 1, 'b', 2), (k, v) -> v > 1) AS f, transform_values(map('a', 1), (k, v) -> v * 10) AS tv, transform_keys(map('a', 1), (k, v) -> upper(k)) AS tk")
case(A, "element_at_array", "SELECT element_at(array(1, 2, 3), 1) AS first, element_at(array(1, 2, 3), -1) AS last, element_at(array(1, 2, 3), 5) AS oob")
case(A, "element_at_array_oob_ansi", "SELECT element_at(array(1, 2, 3), 5) AS oob", ansi=True)
case(A, "element_at_zero", "SELECT element_at(array(1, 2, 3), 0) AS z")
case(A, "array_index", "SELECT array(1, 2, 3)[0] AS i0, array(1, 2, 3)[2] AS i2, array(1, 2, 3)[3] AS oob, array(1, 2, 3)[-1] AS neg")
case(A, "array_index_oob_ansi", "SELECT array(1, 2, 3)[3] AS oob", ansi=True)
case(A, "try_element_at", "SELECT try_element_at(array(1, 2), 5) AS r", ansi=True)
case(A, "split_index", "SELECT id, split(s, ',')[0] AS a, split(s, ',')[1] AS b FROM t", T_ARR)
case(A, "get_func", "SELECT get(array(1, 2), 1) AS a, get(array(1, 2), 5) AS b")
case(A, "array_distinct", "SELECT array_distinct(array(1, 2, 2, NULL, 1, NULL)) AS r, array_distinct(split('b,a,b', ',')) AS s")
case(A, "array_join", "SELECT array_join(array('a', NULL, 'c'), ',') AS a, array_join(array('a', NULL, 'c'), ',', '?') AS b, array_join(array(1, 2), '-') AS c")
case(A, "sort_array", "SELECT sort_array(array(3, NULL, 1, 2)) AS asc_, sort_array(array(3, NULL, 1, 2), false) AS desc_, array_sort(array(3, NULL, 1, 2)) AS arr_sort, sort_array(array('b', 'A', 'a')) AS strs")
case(A, "array_sort_comparator", "SELECT array_sort(array(3, 1, 2), (l, r) -> CASE WHEN l < r THEN 1 WHEN l > r THEN -1 ELSE 0 END) AS r")
case(A, "flatten", "SELECT flatten(array(array(1, 2), array(3), array())) AS a, flatten(array(array(1), NULL)) AS n")
case(A, "arrays_zip", "SELECT arrays_zip(array(1, 2, 3), array('a', 'b')) AS r")
case(A, "arrays_zip_names", "SELECT arrays_zip(a, b) AS r FROM (SELECT array(1, 2) AS a, array('x', 'y') AS b)")
case(A, "transform", "SELECT transform(array(1, 2, 3), x -> x * 2) AS a, transform(array(10, 20), (x, i) -> x + i) AS b")
case(A, "filter_lambda", "SELECT filter(array(1, 2, 3, 4, NULL), x -> x % 2 = 0) AS a, filter(array(1, 2, 3), (x, i) -> i > 0) AS b")
case(A, "aggregate_lambda", "SELECT aggregate(array(1, 2, 3), 0, (acc, x) -> acc + x) AS a, aggregate(array(1, 2, 3), 0, (acc, x) -> acc + x, acc -> acc * 10) AS b, reduce(array(1.5D, 2.5D), 0D, (acc, x) -> acc + x) AS c")
case(A, "exists_forall", "SELECT exists(array(1, 2), x -> x > 1) AS e, forall(array(1, 2), x -> x > 1) AS f, exists(array(1, NULL), x -> x > 1) AS en")
case(A, "lambda_unaliased_name", "SELECT transform(array(1, 2), x -> x + 1)")
case(A, "array_set_ops", "SELECT array_union(array(1, 2), array(2, 3)) AS u, array_intersect(array(1, 2, 2), array(2)) AS i, array_except(array(1, 2, 3), array(2)) AS e, arrays_overlap(array(1, 2), array(2, 5)) AS o")
case(A, "array_misc", "SELECT array_position(array('a', 'b'), 'b') AS pos, array_remove(array(1, 2, 1), 1) AS rem, array_repeat('x', 3) AS rep, slice(array(1, 2, 3, 4), 2, 2) AS sl, array_max(array(1, 3, 2)) AS mx, array_min(array(1, 3, 2)) AS mn, array_compact(array(1, NULL, 2)) AS cp, array_append(array(1), 2) AS ap, array_prepend(array(1), 0) AS pp")
case(A, "concat_arrays", "SELECT concat(array(1, 2), array(3)) AS r, array(1) || array(2) AS p")
case(A, "array_of_structs_field", "SELECT arr.a AS r FROM (SELECT array(named_struct('a', 1), named_struct('a', 2)) AS arr)")
case(A, "array_compare", "SELECT array(1, 2) = array(1, 2) AS eq, array(1, 2) < array(1, 3) AS lt, named_struct('a', 1) = named_struct('a', 1) AS seq")
case(A, "collect_then_explode", "SELECT explode(c) AS v FROM (SELECT sort_array(collect_list(id)) AS c FROM t)", T_ARR)
case(A, "array_type_names", "SELECT array(1, 2L) AS a, array(1, 2.5) AS b, array(1, 2.5D) AS c, map(1, 'a') AS m, array(DATE '2024-01-01', TIMESTAMP '2024-01-01 01:00:00') AS dt")
case(A, "array_contains_string_num", "SELECT array_contains(array(1, 2), '1') AS r")
case(A, "named_struct_nested_types", "SELECT named_struct('a', array(1), 'b', map('k', named_struct('c', 1.5BD))) AS r")

# ---------------------------------------------------------------------------
# AGGREGATES
# ---------------------------------------------------------------------------
A = "aggregates"
case(A, "count_variants", "SELECT count(*) AS a, count(1) AS b, count(amount) AS c, count(DISTINCT region) AS d, count(DISTINCT region, product) AS e FROM sales", T_SALES)
case(A, "count_unaliased", "SELECT count(*), count(1), count(amount), count(DISTINCT region) FROM sales", T_SALES)
case(A, "sum_avg_min_max", "SELECT sum(amount) AS s, avg(amount) AS a, min(amount) AS mn, max(amount) AS mx, sum(qty) AS sq, avg(qty) AS aq, sum(price) AS sp, avg(price) AS ap FROM sales", T_SALES)
case(A, "sum_avg_unaliased_types", "SELECT sum(amount), avg(amount), sum(qty), avg(qty), sum(price), min(region), max(ts) FROM sales", T_SALES)
case(A, "group_by_region", "SELECT region, count(*) AS n, sum(amount) AS s, avg(price) AS ap FROM sales GROUP BY region", T_SALES)
case(A, "group_by_all", "SELECT region, product, sum(qty) AS q FROM sales GROUP BY ALL", T_SALES)
case(A, "group_by_all_expr", "SELECT upper(region) AS r, count(*) AS n FROM sales GROUP BY ALL", T_SALES)
case(A, "group_by_all_no_agg", "SELECT region FROM sales GROUP BY ALL", T_SALES)
case(A, "group_by_position", "SELECT region, sum(qty) AS q FROM sales GROUP BY 1", T_SALES)
case(A, "group_by_position_two", "SELECT region, product, count(*) AS n FROM sales GROUP BY 1, 2 ORDER BY 1, 2", T_SALES)
case(A, "group_by_position_out_of_range", "SELECT region, count(*) FROM sales GROUP BY 3", T_SALES)
case(A, "group_by_alias", "SELECT upper(region) AS r, count(*) AS n FROM sales GROUP BY r", T_SALES)
case(A, "group_by_alias_shadowing_column", "SELECT upper(region) AS region, count(*) AS n FROM sales GROUP BY region", T_SALES)
case(A, "having", "SELECT region, sum(qty) AS q FROM sales GROUP BY region HAVING sum(qty) > 5", T_SALES)
case(A, "having_alias", "SELECT region, sum(qty) AS q FROM sales GROUP BY region HAVING q > 5", T_SALES)
case(A, "having_no_group_by", "SELECT count(*) AS n FROM sales HAVING count(*) > 100", T_SALES)
case(A, "empty_input_aggs", "SELECT count(*) AS n, sum(qty) AS s, avg(qty) AS a, max(qty) AS m, collect_list(qty) AS c FROM sales WHERE 1 = 0", T_SALES)
case(A, "empty_input_group_by", "SELECT region, count(*) AS n FROM sales WHERE 1 = 0 GROUP BY region", T_SALES)
case(A, "first_last", "SELECT region, first(qty) AS f, last(qty) AS l, first(qty, true) AS fi, last(qty, true) AS li FROM (SELECT * FROM sales WHERE region = 'east' ORDER BY ts) GROUP BY region", T_SALES)
case(A, "first_ignore_nulls_syntax", "SELECT first(price) IGNORE NULLS AS f, any_value(region) IS NOT NULL AS av FROM (SELECT * FROM sales WHERE region = 'east' AND product = 'apple' ORDER BY ts DESC)", T_SALES)
case(A, "min_by_max_by", "SELECT region, min_by(product, price) AS mnb, max_by(product, price) AS mxb FROM sales GROUP BY region", T_SALES)
case(A, "collect_list_set_sorted", "SELECT region, sort_array(collect_list(product)) AS cl, sort_array(collect_set(product)) AS cs, array_sort(collect_set(qty)) AS cq FROM sales GROUP BY region", T_SALES)
case(A, "collect_list_unaliased", "SELECT sort_array(collect_list(qty)) FROM sales", T_SALES)
case(A, "percentile_approx", "SELECT percentile_approx(x, 0.5) AS med, percentile_approx(x, array(0.25, 0.75)) AS qs, approx_percentile(x, 0.9) AS p90 FROM t", {"t": NUMS})
case(A, "percentile_exact", "SELECT percentile(x, 0.5) AS med, percentile(x, 0.25) AS q1, percentile(x, array(0.1, 0.9)) AS arr, median(x) AS md FROM t", {"t": NUMS})
case(A, "percentile_cont_disc", "SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY x) AS pc, percentile_disc(0.25) WITHIN GROUP (ORDER BY x) AS pd FROM t", {"t": NUMS})
case(A, "stddev_variance", "SELECT stddev(x) AS sd, stddev_samp(x) AS sds, stddev_pop(x) AS sdp, variance(x) AS v, var_samp(x) AS vs, var_pop(x) AS vp, std(x) AS st FROM t", {"t": NUMS})
case(A, "stddev_single_row", "SELECT stddev(x) AS sd, variance(x) AS v, stddev_pop(x) AS sp FROM t WHERE x = 1", {"t": NUMS})
case(A, "approx_count_distinct", "SELECT approx_count_distinct(region) AS a, approx_count_distinct(product) AS b FROM sales", T_SALES)
case(A, "bool_aggs", "SELECT region, bool_and(flag) AS ba, bool_or(flag) AS bo, every(flag) AS ev, any(flag) AS an, some(flag) AS so FROM sales GROUP BY region", T_SALES)
case(A, "count_if", "SELECT count_if(qty > 2) AS a, count_if(flag) AS b FROM sales", T_SALES)
case(A, "sum_if_filter_clause", "SELECT sum(qty) FILTER (WHERE region = 'east') AS e, count(*) FILTER (WHERE flag) AS f FROM sales", T_SALES)
case(A, "sum_int_overflow_to_bigint", "SELECT sum(i) AS s, typeof(sum(i)) AS ty FROM VALUES (2147483647), (2147483647) AS v(i)")
case(A, "sum_bigint_overflow", "SELECT sum(i) AS s FROM VALUES (9223372036854775807L), (1L) AS v(i)")
case(A, "sum_bigint_overflow_ansi", "SELECT sum(i) AS s FROM VALUES (9223372036854775807L), (1L) AS v(i)", ansi=True)
case(A, "avg_int_type", "SELECT avg(i) AS a, typeof(avg(i)) AS ty, avg(CAST(i AS DECIMAL(5,1))) AS ad FROM VALUES (1), (2) AS v(i)")
case(A, "sum_distinct", "SELECT sum(DISTINCT qty) AS s, avg(DISTINCT qty) AS a FROM sales", T_SALES)
case(A, "grouping_sets_rollup", "SELECT region, product, sum(qty) AS q FROM sales WHERE region IS NOT NULL GROUP BY ROLLUP(region, product)", T_SALES)
case(A, "cube_grouping", "SELECT region, grouping(region) AS g, count(*) AS n FROM sales GROUP BY CUBE(region)", T_SALES)
case(A, "max_string_date", "SELECT max(product) AS mp, min(ts) AS mt, max(flag) AS mf FROM sales", T_SALES)
case(A, "corr_covar", "SELECT corr(qty, price) AS c, covar_pop(qty, price) AS cp, covar_samp(qty, price) AS cs FROM sales", T_SALES)
case(A, "mode_func", "SELECT mode(product) AS m FROM sales WHERE product <> 'pear'", T_SALES)
case(A, "agg_in_expression", "SELECT sum(qty) * 2 + 1 AS r, round(avg(price), 2) AS ar FROM sales", T_SALES)
case(A, "nested_agg_error", "SELECT sum(max(qty)) FROM sales", T_SALES)
case(A, "non_grouped_column_error", "SELECT region, product, count(*) FROM sales GROUP BY region", T_SALES)
# windows
W = "FROM sales WHERE region IS NOT NULL"
case(A, "window_row_number", f"SELECT region, product, ts, row_number() OVER (PARTITION BY region ORDER BY ts) AS rn {W}", T_SALES)
case(A, "window_rank_dense_rank", f"SELECT region, product, rank() OVER (PARTITION BY region ORDER BY product) AS rk, dense_rank() OVER (PARTITION BY region ORDER BY product) AS drk, percent_rank() OVER (PARTITION BY region ORDER BY product) AS pr {W}", T_SALES)
case(A, "window_lag_lead", f"SELECT region, ts, qty, lag(qty) OVER (PARTITION BY region ORDER BY ts) AS lg, lead(qty) OVER (PARTITION BY region ORDER BY ts) AS ld, lag(qty, 2, -1) OVER (PARTITION BY region ORDER BY ts) AS lg2 {W}", T_SALES)
case(A, "window_sum_partition", f"SELECT region, product, qty, sum(qty) OVER (PARTITION BY region) AS tot {W}", T_SALES)
case(A, "window_running_sum", f"SELECT region, ts, qty, sum(qty) OVER (PARTITION BY region ORDER BY ts) AS run, count(*) OVER (PARTITION BY region ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS c2 {W}", T_SALES)
case(A, "window_running_sum_ties_range", "SELECT x, sum(x) OVER (ORDER BY g) AS r FROM VALUES (1, 1), (2, 1), (3, 2) AS v(x, g)")
case(A, "window_first_last_value", f"SELECT region, ts, first_value(qty) OVER (PARTITION BY region ORDER BY ts) AS fv, last_value(qty) OVER (PARTITION BY region ORDER BY ts) AS lv, first_value(price, true) OVER (PARTITION BY region ORDER BY ts DESC) AS fvn, last_value(qty) OVER (PARTITION BY region ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS lvall {W}", T_SALES)
case(A, "window_ntile_cume_dist", "SELECT x, ntile(4) OVER (ORDER BY x) AS nt, cume_dist() OVER (ORDER BY x) AS cd FROM t", {"t": NUMS})
case(A, "window_unaliased_name", f"SELECT row_number() OVER (PARTITION BY region ORDER BY ts) {W}", T_SALES)
case(A, "window_avg_no_order", f"SELECT region, avg(price) OVER (PARTITION BY region) AS a, max(amount) OVER () AS m {W}", T_SALES)
case(A, "window_dedup_pattern", "SELECT region, product, ts FROM (SELECT *, row_number() OVER (PARTITION BY region ORDER BY ts DESC) AS rn FROM sales) WHERE rn = 1", T_SALES)
case(A, "window_qualify", "SELECT region, product FROM sales QUALIFY row_number() OVER (PARTITION BY region ORDER BY ts) = 1", T_SALES)
case(A, "window_named", "SELECT x, sum(x) OVER w AS s FROM t WINDOW w AS (ORDER BY x ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)", {"t": NUMS})
case(A, "window_order_nulls", "SELECT qty, row_number() OVER (ORDER BY qty) AS asc_rn, row_number() OVER (ORDER BY qty DESC) AS desc_rn FROM sales", T_SALES)
case(A, "order_by_nulls_default", "SELECT qty FROM sales ORDER BY qty", T_SALES, ordered=True)
case(A, "order_by_nulls_desc_default", "SELECT qty FROM sales ORDER BY qty DESC", T_SALES, ordered=True)
case(A, "order_by_nulls_last", "SELECT qty FROM sales ORDER BY qty ASC NULLS LAST", T_SALES, ordered=True)
case(A, "distinct_with_nulls", "SELECT DISTINCT region FROM sales", T_SALES)
case(A, "union_dedup", "SELECT region FROM sales UNION SELECT 'east'", T_SALES)
case(A, "limit_order", "SELECT product, price FROM sales WHERE price IS NOT NULL ORDER BY price DESC LIMIT 3", T_SALES, ordered=True)

# ---------------------------------------------------------------------------
# CASTS AND COMPARISONS
# ---------------------------------------------------------------------------
case(A, "union_widens_aggregate_types", "SELECT sum(qty) AS kg, region FROM sales GROUP BY region UNION SELECT sum(price) AS kg, region FROM sales GROUP BY region", T_SALES)
case(A, "union_all_widens_int_and_double", "SELECT qty AS v FROM sales UNION ALL SELECT price FROM sales", T_SALES)

A = "casts"
for ty in ["INT", "BIGINT", "DOUBLE", "FLOAT", "DATE", "BOOLEAN", "DECIMAL(10,2)", "TIMESTAMP", "SMALLINT", "TINYINT"]:
    nm = ty.lower().replace("(", "_").replace(",", "_").replace(")", "")
    case(A, f"cast_string_to_{nm}", f"SELECT s, CAST(s AS {ty}) AS r FROM t", T_CASTS)
    case(A, f"try_cast_string_to_{nm}", f"SELECT s, try_cast(s AS {ty}) AS r FROM t", T_CASTS, ansi=True)
for nm, expr in [("empty_int", "CAST('' AS INT)"), ("empty_float", "CAST('' AS FLOAT)"), ("empty_double", "CAST('' AS DOUBLE)"),
                 ("empty_date", "CAST('' AS DATE)"), ("abc_int", "CAST('abc' AS INT)"), ("spaces_int", "CAST(' 12 ' AS INT)"),
                 ("frac_str_int", "CAST('1.9' AS INT)"), ("yes_bool", "CAST('yes' AS BOOLEAN)"), ("overflow_str_int", "CAST('2147483648' AS INT)"),
                 ("bad_date", "CAST('2024-02-30' AS DATE)"), ("bad_ts", "CAST('x' AS TIMESTAMP)"), ("double_to_int_overflow", "CAST(1e20 AS INT)"),
                 ("decimal_overflow", "CAST(12345.678 AS DECIMAL(5,2))"), ("int_to_tinyint_overflow", "CAST(300 AS TINYINT)"),
                 ("nan_to_int", "CAST(CAST('NaN' AS DOUBLE) AS INT)"), ("str_to_bool_2", "CAST('2' AS BOOLEAN)")]:
    both(A, f"lit_{nm}", f"SELECT {expr} AS r")
case(A, "cast_bool_strings", "SELECT CAST('true' AS BOOLEAN) AS a, CAST('TRUE' AS BOOLEAN) AS b, CAST('t' AS BOOLEAN) AS c, CAST('yes' AS BOOLEAN) AS d, CAST('y' AS BOOLEAN) AS e, CAST('1' AS BOOLEAN) AS f, CAST('0' AS BOOLEAN) AS g, CAST('no' AS BOOLEAN) AS h, CAST(' true ' AS BOOLEAN) AS i, CAST('off' AS BOOLEAN) AS j")
case(A, "cast_numeric_to_int", "SELECT CAST(1.9 AS INT) AS a, CAST(-1.9 AS INT) AS b, CAST(1.5D AS INT) AS c, CAST(2.5D AS BIGINT) AS d, CAST(-0.5D AS INT) AS e")
case(A, "cast_double_to_string", "SELECT CAST(1.0E10D AS STRING) AS a, CAST(0.1D AS STRING) AS b, CAST(100.0D AS STRING) AS c, CAST(1.0E-5D AS STRING) AS d, CAST(1234567.0D AS STRING) AS e, CAST(12345678.0D AS STRING) AS f, CAST(0.001D AS STRING) AS g, CAST(-0.0D AS STRING) AS h, CAST(1.0E7D AS STRING) AS i")
case(A, "cast_float_to_string", "SELECT CAST(CAST(0.1 AS FLOAT) AS STRING) AS a, CAST(CAST(1.0E10 AS FLOAT) AS STRING) AS b, CAST(CAST(3.14159 AS FLOAT) AS DOUBLE) AS c")
case(A, "cast_special_double_to_string", "SELECT CAST(CAST('NaN' AS DOUBLE) AS STRING) AS a, CAST(CAST('Infinity' AS DOUBLE) AS STRING) AS b, CAST(CAST('-Infinity' AS DOUBLE) AS STRING) AS c")
case(A, "double_column_to_string", "SELECT d, CAST(d AS STRING) AS r, string(d) AS r2 FROM t", T_NUM)
case(A, "decimal_to_string", "SELECT m, CAST(m AS STRING) AS r, CAST(1.50BD AS STRING) AS lit, CAST(CAST(0 AS DECIMAL(10,2)) AS STRING) AS z FROM t", T_NUM)
case(A, "cast_ts_to_string", "SELECT ts, CAST(ts AS STRING) AS r FROM t", T_DT)
case(A, "cast_date_to_string_ts", "SELECT CAST(d AS STRING) AS s, CAST(d AS TIMESTAMP) AS ts FROM t", T_DT)
case(A, "cast_ts_to_date", "SELECT CAST(ts AS DATE) AS r FROM t", T_DT)
case(A, "cast_string_ts_forms", "SELECT CAST('2024-03-05' AS TIMESTAMP) AS a, CAST('2024-03-05T13:04:05Z' AS TIMESTAMP) AS b, CAST('2024-03-05 13:04:05+02:00' AS TIMESTAMP) AS c, CAST('2024-03-05 13:04' AS TIMESTAMP) AS d, CAST('2024' AS TIMESTAMP) AS e, CAST('2024-3-5 1:2:3' AS TIMESTAMP) AS f")
case(A, "cast_string_date_forms", "SELECT CAST('2024' AS DATE) AS a, CAST('2024-03' AS DATE) AS b, CAST('2024-03-05T10:00:00' AS DATE) AS c, CAST(' 2024-03-05' AS DATE) AS d, CAST('2024/03/05' AS DATE) AS e")
case(A, "func_style_casts", "SELECT int(s) AS i, bigint(s) AS b, double(s) AS d, boolean(s) AS bo, string(id) AS st, date('2024-01-02') AS dt, float(s) AS f, smallint(s) AS sm, tinyint(s) AS ti, decimal(s) AS de, timestamp('2024-01-02 03:04:05') AS ts FROM t", T_NUM)
case(A, "func_style_casts_unaliased", "SELECT int(s), bigint(s), double(s), string(id), boolean(s) FROM t", T_NUM)
case(A, "type_name_aliases", "SELECT CAST(1 AS LONG) AS l, CAST(1 AS SHORT) AS s, CAST(1 AS BYTE) AS b, CAST(1 AS INTEGER) AS i, CAST(1 AS REAL) AS r, CAST(1 AS DEC) AS d, CAST(1 AS NUMERIC(5,1)) AS n, CAST(1 AS VARCHAR(3)) AS v, CAST('abcdef' AS CHAR(3)) AS c")
case(A, "decimal_casts_rounding", "SELECT CAST(1.005 AS DECIMAL(10,2)) AS a, CAST(2.5 AS DECIMAL(10,0)) AS b, CAST(-2.5 AS DECIMAL(10,0)) AS c, CAST(1.995D AS DECIMAL(10,2)) AS d, CAST('3.14159' AS DECIMAL(4,2)) AS e, CAST(10 AS DECIMAL(3,1)) AS f")
case(A, "decimal_to_int_truncates", "SELECT CAST(m AS INT) AS r, CAST(m AS DOUBLE) AS dbl FROM t", T_NUM)
case(A, "round_functions", "SELECT round(2.5) AS a, round(-2.5) AS b, round(2.5D) AS c, bround(2.5) AS d, round(1.2345, 2) AS e, round(1234.5, -2) AS f, ceil(1.2) AS g, floor(-1.2) AS h, ceil(1.2D) AS i, round(m, 1) AS rm FROM t WHERE id = 5", T_NUM)
case(A, "decimal_arith_types", "SELECT m + 1 AS a, m * m AS b, m / 3 AS c, m + 1.5D AS dbl, typeof(m / 3) AS tdiv FROM t WHERE id = 5", T_NUM)
case(A, "decimal_literal_arith", "SELECT 0.1 + 0.2 AS a, 0.1D + 0.2D AS b, 1 / 3 AS c, 1.0 / 3 AS d, 10 / 4 AS e")
case(A, "bigint_vs_empty_string", "SELECT id, id != '' AS r FROM t", T_NUM)
case(A, "bigint_vs_empty_string_ansi", "SELECT id, id != '' AS r FROM t", T_NUM, ansi=True)
case(A, "bigint_vs_empty_string_double_quoted", 'SELECT id FROM t WHERE id != ""', T_NUM)
case(A, "bigint_eq_string", "SELECT id FROM t WHERE id = '5'", T_NUM)
case(A, "bigint_eq_string_ansi", "SELECT id FROM t WHERE id = '5'", T_NUM, ansi=True)
case(A, "bigint_eq_frac_string", "SELECT id FROM t WHERE id = '5.0'", T_NUM)
case(A, "string_gt_int", "SELECT s, s > 10 AS r FROM t", T_NUM)
case(A, "string_gt_int_ansi", "SELECT s, s > 10 AS r FROM t", T_NUM, ansi=True)
case(A, "string_eq_double", "SELECT s FROM t WHERE s = 10.0", T_NUM)
case(A, "int_div", "SELECT 5 div 2 AS a, -5 div 2 AS b, 5 div -2 AS c, 5L div 2L AS d, 7.5 div 2 AS e")
case(A, "int_div_zero", "SELECT 5 div 0 AS r")
case(A, "int_div_zero_ansi", "SELECT 5 div 0 AS r", ansi=True)
case(A, "modulo", "SELECT 7 % -3 AS a, -7 % 3 AS b, 7 % 3 AS c, mod(-7, 3) AS d, pmod(-7, 3) AS e, 7.5 % 2 AS f, 5.5D % 2 AS g")
case(A, "modulo_zero", "SELECT 7 % 0 AS r, pmod(7, 0) AS p")
case(A, "modulo_zero_ansi", "SELECT 7 % 0 AS r", ansi=True)
case(A, "divide_by_zero", "SELECT 1/0 AS a, 1.0/0 AS b, 1D/0 AS c, 0D/0D AS d")
case(A, "divide_by_zero_ansi", "SELECT 1/0 AS a", ansi=True)
case(A, "divide_double_by_zero_ansi", "SELECT 1D/0D AS a", ansi=True)
case(A, "try_divide", "SELECT try_divide(1, 0) AS a, try_add(2147483647, 1) AS b, try_multiply(2, 3) AS c", ansi=True)
case(A, "divide_types", "SELECT 5 / 2 AS a, typeof(5 / 2) AS ta, 5L / 2 AS b, 5.0 / 2 AS c, typeof(5.0 / 2) AS tc")
case(A, "int_overflow_add", "SELECT i, i + 1 AS r, i * 2 AS m, -i AS neg FROM t", T_NUM)
case(A, "int_overflow_add_ansi", "SELECT i + 1 AS r FROM t", T_NUM, ansi=True)
case(A, "bigint_overflow_lit", "SELECT 9223372036854775807L + 1L AS r, abs(-2147483648) AS a")
case(A, "bigint_overflow_lit_ansi", "SELECT 9223372036854775807L + 1L AS r", ansi=True)
case(A, "double_eq_operator", "SELECT 1 == 1 AS a, 1 = 1.0 AS b, 'a' == 'a' AS c, NULL == NULL AS d, 1 <> 2 AS e, 1 != 1 AS f")
case(A, "null_safe_eq", "SELECT NULL <=> NULL AS a, 1 <=> NULL AS b, 1 <=> 1 AS c, equal_null(NULL, NULL) AS d")
case(A, "null_safe_eq_column", "SELECT id FROM t WHERE id <=> NULL", T_NUM)
case(A, "nan_semantics", "SELECT d, d = d AS selfeq, d > 1e300 AS gt, isnan(d) AS isn, d IS NULL AS isnull FROM t", T_NUM)
case(A, "nan_ordering", "SELECT d FROM t ORDER BY d", T_NUM, ordered=True)
case(A, "nan_group", "SELECT CAST('NaN' AS DOUBLE) = CAST('NaN' AS DOUBLE) AS r, 0.0D = -0.0D AS z")
case(A, "boolean_logic_nulls", "SELECT NULL AND false AS a, NULL AND true AS b, NULL OR true AS c, NULL OR false AS d, NOT NULL AS e")
case(A, "in_with_nulls", "SELECT 1 IN (1, NULL) AS a, 2 IN (1, NULL) AS b, 2 NOT IN (1, NULL) AS c, NULL IN (1) AS d")
case(A, "in_mixed_types", "SELECT id FROM t WHERE id IN ('5', 10)", T_NUM)
case(A, "between_types", "SELECT 5 BETWEEN 1 AND 10 AS a, 'b' BETWEEN 'a' AND 'c' AS b, 5 BETWEEN 10 AND 1 AS c")
case(A, "bool_to_int_and_back", "SELECT CAST(true AS INT) AS a, CAST(0 AS BOOLEAN) AS b, CAST(5 AS BOOLEAN) AS c, CAST(0.0D AS BOOLEAN) AS d, CAST(true AS DOUBLE) AS e")
case(A, "int_to_date_error", "SELECT CAST(1 AS DATE) AS r")
case(A, "string_to_binary", "SELECT CAST('abc' AS BINARY) AS b, CAST(CAST('abc' AS BINARY) AS STRING) AS s")
case(A, "cast_array_struct", "SELECT CAST(array('1', 'x') AS ARRAY<INT>) AS a, CAST(named_struct('a', '1') AS STRUCT<a: INT>) AS s, CAST(array(1, 2) AS STRING) AS ast, CAST(map('a', 1) AS STRING) AS mst, CAST(named_struct('a', 1, 'b', 'x') AS STRING) AS sst")
case(A, "cast_double_colon", "SELECT '5'::INT AS a, 1.9::INT AS b, '2024-01-01'::DATE AS c")
case(A, "typeof_literals", "SELECT typeof(1) AS a, typeof(1L) AS b, typeof(1.5) AS c, typeof(1e3) AS d, typeof('x') AS e, typeof(NULL) AS f, typeof(2147483648) AS g")
case(A, "coalesce_type_widening", "SELECT coalesce(i, d) AS a, coalesce(s, id) AS b, coalesce(m, 1) AS c, typeof(coalesce(i, d)) AS ta, typeof(coalesce(s, id)) AS tb FROM t", T_NUM)
case(A, "case_when_types", "SELECT CASE WHEN id > 0 THEN 1 ELSE 1.5 END AS a, CASE WHEN id > 0 THEN 'x' ELSE 1 END AS b, CASE id WHEN 5 THEN 'five' END AS c FROM t", T_NUM)
case(A, "if_iif", "SELECT if(id > 0, 'pos', 'nonpos') AS a, if(id IS NULL, 1, 0) AS b FROM t", T_NUM)
case(A, "iff_not_in_spark", "SELECT iff(true, 1, 0) AS b")
case(A, "greatest_least", "SELECT greatest(1, NULL, 3) AS a, least(1, NULL, 3) AS b, greatest('a', 'B') AS c, greatest(1, 2.5) AS d")
case(A, "abs_sign_sqrt", "SELECT abs(-5) AS a, sign(-3.5) AS b, sqrt(16) AS c, sqrt(-1) AS d, ln(0) AS e, log10(100) AS f, log(2, 8) AS g, power(2, 10) AS h, exp(0) AS i, 2 ^ 3 AS xor_op")
case(A, "sqrt_negative_ansi", "SELECT sqrt(-1) AS d, ln(0) AS e", ansi=True)
case(A, "string_concat_number", "SELECT concat('a', 1.50BD, 2.0D, true, DATE '2024-01-01') AS r")
case(A, "unary_minus_string", "SELECT -'5' AS a, +'-3' AS b")
case(A, "cast_string_with_whitespace_double", "SELECT CAST(' 1.5 ' AS DOUBLE) AS a, CAST('1.5x' AS DOUBLE) AS b, CAST('1,5' AS DOUBLE) AS c, CAST('+1.5' AS DOUBLE) AS d, CAST('.5' AS DOUBLE) AS e, CAST('5.' AS DOUBLE) AS f, CAST('1e-2' AS DOUBLE) AS g, CAST('inf' AS DOUBLE) AS h, CAST('-infinity' AS DOUBLE) AS i")
case(A, "cast_string_int_forms", "SELECT CAST('+5' AS INT) AS a, CAST('-0' AS INT) AS b, CAST('0x10' AS INT) AS c, CAST('1_000' AS INT) AS d, CAST('\\t7\\n' AS INT) AS e, CAST('007' AS INT) AS f, CAST('1.0' AS BIGINT) AS g")

# ---------------------------------------------------------------------------
# NAMES
# ---------------------------------------------------------------------------
A = "names"
case(A, "case_insensitive_column", "SELECT cust_id, Cust_Id, CUST_ID FROM t", T_CUST)
case(A, "case_insensitive_column_qualified", "SELECT t.cust_id, T.name FROM t", T_CUST)
case(A, "case_insensitive_where", "SELECT Name FROM t WHERE cust_id = 1", T_CUST)
case(A, "alias_keeps_case", "SELECT cust_id AS MyCol, name AS lower_alias, amount AS `Quoted Alias` FROM t", T_CUST)
case(A, "backtick_identifiers", "SELECT `my col`, `a-b`, `x.y`, `select` FROM (SELECT 1 AS `my col`, 2 AS `a-b`, 3 AS `x.y`, 4 AS `select`)")
case(A, "backtick_with_backtick", "SELECT `we``ird` FROM (SELECT 1 AS `we``ird`)")
case(A, "unaliased_sum", "SELECT sum(amount) FROM t", T_CUST)
case(A, "unaliased_sum_case", "SELECT SUM(Amount), Sum(amount) FROM t", T_CUST)
case(A, "unaliased_count_star", "SELECT count(*) FROM t", T_CUST)
case(A, "unaliased_count_1", "SELECT count(1), COUNT(cust_id) FROM t", T_CUST)
case(A, "unaliased_count_distinct", "SELECT count(DISTINCT name) FROM t", T_CUST)
case(A, "unaliased_arith", "SELECT amount + 1, a * 2, a - b, a / b, -a, a % 2 FROM t", T_CUST)
case(A, "unaliased_upper", "SELECT upper(name), UPPER(Name) FROM t", T_CUST)
case(A, "unaliased_cast", "SELECT CAST(amount AS INT), cast(a as string), CAST(a AS BIGINT), CAST(amount AS DECIMAL(5,1)) FROM t", T_CUST)
case(A, "unaliased_qualified", "SELECT t.amount, t.CUST_ID FROM t", T_CUST)
case(A, "unaliased_struct_field", "SELECT s.curr, s.amt FROM (SELECT named_struct('curr', 'USD', 'amt', 1) AS s)")
case(A, "unaliased_nested_struct_field", "SELECT s.inner.x FROM (SELECT named_struct('inner', named_struct('x', 1)) AS s)")
case(A, "unaliased_coalesce", "SELECT coalesce(a, b), nvl(a, 0), ifnull(a, b) FROM t", T_CUST)
case(A, "unaliased_case_when", "SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END FROM t", T_CUST)
case(A, "unaliased_case_simple", "SELECT CASE a WHEN 1 THEN 'one' END FROM t", T_CUST)
case(A, "unaliased_literals", "SELECT 1, 'x', 1.5, NULL, true, 1L, DATE '2024-01-01', 2.0D, X'AB'")
case(A, "unaliased_timestamp_literal", "SELECT TIMESTAMP '2024-01-01 10:00:00', INTERVAL '1' DAY, INTERVAL 2 HOURS")
case(A, "unaliased_comparisons", "SELECT a = b, a <=> b, a IS NULL, a IS NOT NULL, a IN (1, 2), a BETWEEN 1 AND 2, name LIKE 'a%', NOT (a > 1) FROM t", T_CUST)
case(A, "unaliased_logic", "SELECT a > 1 AND b > 1, a > 1 OR b IS NULL FROM t", T_CUST)
case(A, "unaliased_functions_misc", "SELECT round(amount, 1), substring(name, 1, 2), concat(name, '!'), date_add(DATE '2024-01-01', 1), abs(a), length(name) FROM t", T_CUST)
case(A, "unaliased_concat_pipes", "SELECT name || '!' FROM t", T_CUST)
case(A, "unaliased_if", "SELECT if(a > 1, 'y', 'n'), nullif(a, 1) FROM t", T_CUST)
case(A, "unaliased_double_colon_cast", "SELECT a::STRING, '5'::INT FROM t", T_CUST)
case(A, "unaliased_try_cast", "SELECT try_cast(name AS INT) FROM t", T_CUST)
case(A, "unaliased_scalar_subquery", "SELECT (SELECT max(a) FROM t)", T_CUST)
case(A, "unaliased_avg_min_max", "SELECT avg(a), min(name), max(amount), first(a), stddev(a) FROM t", T_CUST)
case(A, "unaliased_array_index", "SELECT arr[0], m['k'] FROM (SELECT array(1) AS arr, map('k', 1) AS m)")
case(A, "unaliased_paren_expr", "SELECT (a + 1) * 2, ((a)) FROM t", T_CUST)
case(A, "unaliased_string_funcs_with_literal_args", "SELECT lpad(name, 5, '*'), regexp_replace(name, 'a', 'b'), date_format(DATE '2024-01-01', 'yyyy') FROM t", T_CUST)
case(A, "duplicate_output_names", "SELECT a, a, b AS a FROM t", T_CUST)
case(A, "duplicate_names_subquery_ref_error", "SELECT a FROM (SELECT a, b AS a FROM t)", T_CUST)
case(A, "order_by_alias_different_case", "SELECT cust_id AS MyId FROM t ORDER BY myid DESC", T_CUST, ordered=True)
case(A, "order_by_column_not_selected", "SELECT name FROM t ORDER BY CUST_ID DESC", T_CUST, ordered=True)
case(A, "order_by_position", "SELECT name, cust_id FROM t ORDER BY 2 DESC", T_CUST, ordered=True)
case(A, "group_by_alias_isnull", "SELECT a IS NULL AS isn, count(*) AS n FROM t GROUP BY isn", T_CUST)
case(A, "group_by_alias_diff_case", "SELECT a IS NULL AS IsN, count(*) AS n FROM t GROUP BY isn", T_CUST)
case(A, "subquery_alias_columns", "SELECT x.CUST_ID, x.name FROM (SELECT * FROM t) AS x", T_CUST)
case(A, "cte_names", "WITH Base AS (SELECT cust_id AS Id FROM t) SELECT id, ID FROM base", T_CUST)
case(A, "cte_column_list", "WITH c(p, q) AS (SELECT cust_id, name FROM t) SELECT * FROM c", T_CUST)
case(A, "values_default_names", "SELECT * FROM VALUES (1, 'a'), (2, 'b')")
case(A, "values_named", "SELECT * FROM VALUES (1, 'a') AS v(Num, Str)")
case(A, "table_alias_column_list", "SELECT * FROM t AS x(c1, c2, c3, c4, c5)", T_CUST)
case(A, "ambiguous_column_error", "SELECT id FROM a JOIN b ON a.id = b.id", T_J)
case(A, "unresolved_column_error", "SELECT nope FROM t", T_CUST)
case(A, "select_same_col_diff_case", "SELECT Name, NAME FROM t", T_CUST)
case(A, "struct_field_case_insensitive", "SELECT s.CURR FROM (SELECT named_struct('curr', 'USD') AS s)")
case(A, "map_struct_names_in_named_struct", "SELECT named_struct('Mixed', 1).mixed AS r")
case(A, "unaliased_window_sum", "SELECT sum(a) OVER (PARTITION BY b) FROM t", T_CUST)
case(A, "unaliased_explode_names", "SELECT explode(array(1)), 1 + 1")
case(A, "unaliased_negative_literal", "SELECT -1, - a, +a FROM t", T_CUST)
case(A, "unaliased_date_funcs", "SELECT year(DATE '2024-01-01'), datediff(DATE '2024-01-02', DATE '2024-01-01'), to_date('2024-01-01'), current_date() IS NOT NULL")
case(A, "unaliased_distinct_col", "SELECT DISTINCT Name FROM t", T_CUST)
case(A, "unaliased_in_subquery_expr", "SELECT a IN (SELECT b FROM t) FROM t", T_CUST)
case(A, "alias_no_as", "SELECT a x, b `Y y` FROM t", T_CUST)
case(A, "string_alias", "SELECT a AS 'str_alias' FROM t", T_CUST)
case(A, "double_quoted_alias", 'SELECT a AS "dq alias" FROM t', T_CUST)

# ---------------------------------------------------------------------------
# JOINS
# ---------------------------------------------------------------------------
A = "joins"
for jt in ["INNER", "LEFT", "RIGHT", "FULL", "LEFT SEMI", "LEFT ANTI"]:
    nm = jt.lower().replace(" ", "_")
    case(A, f"{nm}_using_star", f"SELECT * FROM a {jt} JOIN b USING (id)", T_J)
    case(A, f"{nm}_on_star", f"SELECT * FROM a {jt} JOIN b ON a.id = b.id", T_J)
    case(A, f"natural_{nm}_star", f"SELECT * FROM a NATURAL {jt} JOIN b", T_J)
    if jt not in ("LEFT SEMI", "LEFT ANTI"):
        case(A, f"{nm}_using_qualified", f"SELECT id, a.id AS aid, b.id AS bid, x, y FROM a {jt} JOIN b USING (id)", T_J)
        case(A, f"{nm}_using_two_keys_star", f"SELECT * FROM a {jt} JOIN b USING (k1, k2)", T_K2)
        case(A, f"{nm}_using_qualified_unaliased", f"SELECT a.id, b.id, id FROM a {jt} JOIN b USING (id)", T_J)
case(A, "left_semi_using_qualified", "SELECT a.id, x FROM a LEFT SEMI JOIN b USING (id)", T_J)
case(A, "left_semi_select_b_error", "SELECT b.y FROM a LEFT SEMI JOIN b ON a.id = b.id", T_J)
case(A, "semi_join_keyword_only", "SELECT * FROM a SEMI JOIN b ON a.id = b.id", T_J)
case(A, "anti_join_keyword_only", "SELECT * FROM a ANTI JOIN b ON a.id = b.id", T_J)
case(A, "cross_join_star", "SELECT * FROM a CROSS JOIN c", {"a": JA, "c": JC})
case(A, "comma_join_where", "SELECT a.x, c.z FROM a, c WHERE a.id = c.id", {"a": JA, "c": JC})
case(A, "join_no_condition", "SELECT count(*) AS n FROM a JOIN c", {"a": JA, "c": JC})
case(A, "two_key_on_star", "SELECT * FROM a JOIN b ON a.k1 = b.k1 AND a.k2 = b.k2", T_K2)
case(A, "two_key_full_using_qualified", "SELECT k1, k2, a.k1 AS ak1, b.k1 AS bk1, v, w FROM a FULL JOIN b USING (k1, k2)", T_K2)
case(A, "natural_join_two_keys", "SELECT * FROM a NATURAL JOIN b", T_K2)
case(A, "chained_using_star", "SELECT * FROM a JOIN b USING (id) JOIN c USING (id)", T_J3)
case(A, "chained_using_left_star", "SELECT * FROM a LEFT JOIN b USING (id) LEFT JOIN c USING (id)", T_J3)
case(A, "chained_using_full_star", "SELECT * FROM a FULL JOIN b USING (id) FULL JOIN c USING (id)", T_J3)
case(A, "chained_using_full_qualified", "SELECT id, a.id AS aid, b.id AS bid, c.id AS cid FROM a FULL JOIN b USING (id) FULL JOIN c USING (id)", T_J3)
case(A, "using_different_case", "SELECT * FROM a JOIN b USING (Id)", {"a": UPA, "b": UPB})
case(A, "using_different_case_full", "SELECT * FROM a FULL JOIN b USING (id)", {"a": UPA, "b": UPB})
case(A, "using_different_case_right", "SELECT * FROM a RIGHT JOIN b USING (ID)", {"a": UPA, "b": UPB})
case(A, "natural_different_case", "SELECT * FROM a NATURAL JOIN b", {"a": UPA, "b": UPB})
case(A, "null_safe_join", "SELECT a.x, b.y FROM a JOIN b ON a.id <=> b.id", T_J)
case(A, "join_on_type_coercion", "SELECT a.x, s.v FROM a JOIN (SELECT '2' AS id, 'str' AS v) s ON a.id = s.id", {"a": JA})
case(A, "using_type_coercion", "SELECT * FROM a JOIN (SELECT CAST(2 AS BIGINT) AS id, 'big' AS v) s USING (id)", {"a": JA})
case(A, "join_star_qualified", "SELECT a.*, b.y FROM a JOIN b USING (id)", T_J)
case(A, "join_b_star_using", "SELECT b.* FROM a LEFT JOIN b USING (id)", T_J)
case(A, "join_star_except_b_id", "SELECT * EXCEPT (b.id) FROM a JOIN b ON a.id = b.id", T_J)
case(A, "self_join_aliases", "SELECT l.id, l.x, r.x AS rx FROM a l JOIN a r ON l.id = r.id AND l.x < r.x", {"a": JA})
case(A, "join_subquery_using", "SELECT * FROM (SELECT id, count(*) AS n FROM a GROUP BY id) s JOIN b USING (id)", T_J)
case(A, "join_with_where_on_right_null", "SELECT a.id, x FROM a LEFT JOIN b ON a.id = b.id WHERE b.id IS NULL", T_J)
case(A, "join_on_extra_condition", "SELECT a.id, x, y FROM a LEFT JOIN b ON a.id = b.id AND b.y = 'b2'", T_J)
case(A, "using_missing_column_error", "SELECT * FROM a JOIN c USING (x)", {"a": JA, "c": JC})
case(A, "full_join_coalesce_pattern", "SELECT coalesce(a.id, b.id) AS id, x, y FROM a FULL OUTER JOIN b ON a.id = b.id", T_J)
case(A, "right_outer_keyword", "SELECT * FROM a RIGHT OUTER JOIN b USING (id)", T_J)
case(A, "union_by_name", "SELECT 1 AS a, 2 AS b UNION ALL BY NAME SELECT 3 AS b, 4 AS a")
case(A, "union_positional_names", "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2 AS q, 'y' AS r")
case(A, "intersect_except", "SELECT id FROM a INTERSECT SELECT id FROM b", T_J)
case(A, "except_distinct", "SELECT id FROM a EXCEPT SELECT id FROM b", T_J)
case(A, "in_subquery_null", "SELECT x FROM a WHERE id NOT IN (SELECT id FROM b)", T_J)
case(A, "exists_subquery", "SELECT x FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.id = a.id)", T_J)

# ---------------------------------------------------------------------------
# STARS
# ---------------------------------------------------------------------------
A = "stars"
STAR_T = tbl([("id", "int"), ("Name", "string"), ("c2", "double"), ("c3", "boolean")],
             [[1, "a", 1.5, True], [2, None, None, False]])
T_STAR = {"t": STAR_T}
case(A, "select_star", "SELECT * FROM t", T_STAR)
case(A, "qualified_star", "SELECT t.* FROM t", T_STAR)
case(A, "alias_qualified_star", "SELECT x.*, x.id AS again FROM t x", T_STAR)
case(A, "star_plus_expr", "SELECT *, id + 1 AS nxt FROM t", T_STAR)
case(A, "expr_plus_star", "SELECT id * 10 AS big, * FROM t", T_STAR)
case(A, "star_except_one", "SELECT * EXCEPT (c2) FROM t", T_STAR)
case(A, "star_except_qualified", "SELECT * EXCEPT (t.c2, c3) FROM t", T_STAR)
case(A, "star_except_case_insensitive", "SELECT * EXCEPT (NAME) FROM t", T_STAR)
case(A, "qualified_star_except", "SELECT t.* EXCEPT (id) FROM t", T_STAR)
case(A, "star_except_missing_col", "SELECT * EXCEPT (nope) FROM t", T_STAR)
case(A, "star_except_all_cols", "SELECT * EXCEPT (id, Name, c2, c3) FROM t", T_STAR)
case(A, "star_except_no_parens", "SELECT * EXCEPT c2 FROM t", T_STAR)
case(A, "star_except_struct_field", "SELECT * EXCEPT (s.b) FROM (SELECT 1 AS id, named_struct('a', 1, 'b', 2) AS s)")
case(A, "star_exclude_keyword", "SELECT * EXCLUDE (c2) FROM t", T_STAR)
case(A, "star_replace", "SELECT * REPLACE (id * 2 AS id) FROM t", T_STAR)
case(A, "star_except_join", "SELECT * EXCEPT (a.x) FROM a JOIN b USING (id)", T_J)
case(A, "star_in_count", "SELECT count(*) AS n FROM t", T_STAR)
case(A, "star_in_struct", "SELECT struct(*) AS s FROM t", T_STAR)
case(A, "star_in_function_args", "SELECT concat_ws('|', *) AS r FROM (SELECT 'a' AS p, 'b' AS q)")
case(A, "star_in_array", "SELECT array(*) AS r FROM (SELECT 1 AS p, 2 AS q)")
case(A, "star_with_group_by_all", "SELECT c3, count(*) AS n FROM t GROUP BY ALL", T_STAR)
case(A, "group_by_all_star", "SELECT * FROM t GROUP BY ALL", T_STAR)
case(A, "group_by_all_mixed_agg_expr", "SELECT c3, id + 1 AS k, sum(c2) AS s FROM t GROUP BY ALL", T_STAR)
case(A, "group_by_all_only_aggs", "SELECT count(*) AS n, sum(id) AS s FROM t GROUP BY ALL", T_STAR)
case(A, "star_unknown_qualifier_error", "SELECT zz.* FROM t", T_STAR)
case(A, "regex_column_quoted", "SELECT `(id|c2)` FROM t", T_STAR)
case(A, "star_from_subquery_dup_names", "SELECT * FROM (SELECT id, id FROM t)", T_STAR)
case(A, "distinct_star", "SELECT DISTINCT * FROM (SELECT 1 AS a UNION ALL SELECT 1)")
case(A, "star_except_then_order", "SELECT * EXCEPT (Name) FROM t ORDER BY id DESC", T_STAR, ordered=True)
case(A, "struct_star_nested_path", "SELECT j.p.after.* FROM (SELECT named_struct('p', named_struct('after', named_struct('id', 1, 'name', 'n'))) AS j)")
case(A, "struct_star_beside_columns", "SELECT t.id, s.* FROM (SELECT 7 AS id, named_struct('a', 1, 'b', 2) AS s) t")

# ---------------------------------------------------------------------------
# LITERALS
# ---------------------------------------------------------------------------
A = "literals"
case(A, "integral_suffixes", "SELECT 1L AS l, 1S AS s, 1Y AS y, typeof(1L) AS tl, typeof(1S) AS ts, typeof(1Y) AS ty")
case(A, "fractional_suffixes", "SELECT 1.5D AS d, 1.5BD AS bd, 1.5F AS f, typeof(1.5D) AS td, typeof(1.5BD) AS tbd, typeof(1.5F) AS tf, typeof(1.5) AS tplain")
case(A, "exponent_literals", "SELECT 1e3 AS a, 1E-2 AS b, typeof(1e3) AS t, 1.5e10 AS c, 2E0BD AS d")
case(A, "big_integer_literals", "SELECT 2147483647 AS a, 2147483648 AS b, 9223372036854775807 AS c, 9223372036854775808 AS d, typeof(9223372036854775808) AS td")
case(A, "suffix_overflow_error", "SELECT 128Y AS r")
case(A, "binary_literal", "SELECT X'ab' AS a, X'CAFE' AS b, X'' AS c, hex(X'ab') AS h")
case(A, "binary_odd_error", "SELECT X'abc' AS r")
case(A, "date_literal", "SELECT DATE '2024-01-01' AS a, DATE '2024-02-29' AS b, DATE '2024' AS c, DATE '2024-3-5' AS d")
case(A, "date_literal_invalid", "SELECT DATE '2023-02-29' AS r")
case(A, "timestamp_literal", "SELECT TIMESTAMP '2024-01-01 10:11:12' AS a, TIMESTAMP '2024-01-01' AS b, TIMESTAMP '2024-01-01 10:11:12.345' AS c, TIMESTAMP '2024-01-01T10:11:12Z' AS d, TIMESTAMP '2024-01-01 10:11:12+01:00' AS e")
case(A, "timestamp_ntz_literal", "SELECT TIMESTAMP_NTZ '2024-01-01 10:11:12' AS a, typeof(TIMESTAMP_NTZ '2024-01-01 10:11:12') AS t, TIMESTAMP_LTZ '2024-01-01 10:11:12' AS l")
case(A, "interval_literals", "SELECT INTERVAL '1' DAY AS a, INTERVAL 3 HOURS AS b, INTERVAL '1-2' YEAR TO MONTH AS c, INTERVAL '1 02:03:04' DAY TO SECOND AS d, INTERVAL 1 MONTH AS e")
case(A, "interval_multi_unit", "SELECT INTERVAL 1 DAY 2 HOURS AS a, typeof(INTERVAL 1 DAY 2 HOURS) AS t")
case(A, "interval_arith_date", "SELECT DATE '2024-01-31' + INTERVAL '1' MONTH AS a, DATE '2024-03-01' - INTERVAL '1' DAY AS b, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '90' MINUTE AS c")
case(A, "boolean_null_literals", "SELECT true AS t, false AS f, NULL AS n, typeof(NULL) AS tn, TRUE AND NOT FALSE AS e")
case(A, "string_quote_escapes", "SELECT 'it''s' AS a, \"a \\\"q\\\"\" AS b, 'a\"b' AS c, \"a'b\" AS d, 'it\\'s' AS e")
case(A, "string_concat_adjacent", "SELECT 'a' 'b' 'c' AS r")
case(A, "unicode_escapes", "SELECT '\\u00e9' AS a, 'caf\\u00E9' AS b, '\\U0001F600' AS c")
case(A, "octal_escape", "SELECT '\\101' AS a")
case(A, "empty_string_literal", "SELECT '' AS a, length('') AS l, '' IS NULL AS n")
case(A, "negative_literals", "SELECT -1 AS a, - 1 AS b, -1.5 AS c, -0.0 AS d, -2147483648 AS e, typeof(-2147483648) AS te")
case(A, "decimal_literal_types", "SELECT 1.50 AS a, typeof(1.50) AS ta, 123.456 AS b, typeof(123.456) AS tb, 0.001 AS c, typeof(.5) AS td, 1. AS e")
case(A, "decimal_max_precision", "SELECT 12345678901234567890123456789012345678 AS a, typeof(12345678901234567890123456789012345678) AS t")
case(A, "null_typed_literals", "SELECT CAST(NULL AS INT) AS a, CAST(NULL AS STRING) AS b, CAST(NULL AS DATE) AS c, typeof(CAST(NULL AS DECIMAL(5,2))) AS t")
case(A, "array_map_struct_literals", "SELECT array(1, 2) AS a, map('k', 'v') AS m, named_struct('x', 1, 'y', 'z') AS s, array(array(1), array()) AS aa")
case(A, "hex_float_literal_like", "SELECT 0x10 AS r")
case(A, "nan_inf_literals", "SELECT double('NaN') AS a, double('inf') AS b, double('-Infinity') AS c, float('NaN') AS d, CAST('Infinity' AS FLOAT) AS e")
case(A, "float_precision", "SELECT CAST(0.1 AS FLOAT) AS a, CAST(1.1 AS FLOAT) + CAST(2.2 AS FLOAT) AS b, 0.1D + 0.2D AS c, CAST(16777217 AS FLOAT) AS d")
case(A, "identifier_clause", "SELECT IDENTIFIER('a') FROM (SELECT 1 AS a)")
case(A, "comment_in_sql", "SELECT 1 AS a -- trailing comment\n, /* block */ 2 AS b")
case(A, "trailing_semicolon", "SELECT 1 AS a;")
case(A, "keywords_as_names", "SELECT 1 AS date, 2 AS timestamp, 3 AS `order`, 4 AS user")
case(A, "keyword_column_unquoted", "SELECT date, order FROM (SELECT 1 AS date, 2 AS `order`)")


# --- extra cases (ANSI comparisons and misc) ---
A = "datetime"
case(A, "unix_timestamp_no_arg", "SELECT unix_timestamp() > 1700000000 AS r")
case(A, "datediff_upper_unaliased", "SELECT DATEDIFF(MINUTE, a, b), DATEDIFF(a, b), timestampdiff(HOUR, a, b) FROM t", {"t": TWO_TS})
both(A, "string_date_compare_modes", "SELECT d, d = '2024-03-05' AS eq, d < '2024-1-1' AS lt FROM t", T_DT)
both(A, "date_format_invalid_input_modes", "SELECT s, date_format(s, 'yyyy') AS r FROM t", T_DT)
both(A, "unix_timestamp_bad_string_modes", "SELECT unix_timestamp('garbage', 'yyyy-MM-dd') AS r")
A = "strings"
case(A, "order_by_mixed_case_strings", "SELECT s FROM t ORDER BY s", T_STR, ordered=True)
case(A, "order_by_lower", "SELECT s FROM t ORDER BY lower(s) DESC NULLS LAST, s", T_STR, ordered=True)
both(A, "string_arith_types", "SELECT '5' + 1 AS a, typeof('5' + 1) AS ta, '1.5' * 2 AS b, typeof('1.5' * 2) AS tb, '10' / '4' AS c, typeof('10' / '4') AS tc")
both(A, "concat_non_string_types", "SELECT concat('a', 1, 2.5D, true, NULL) AS r, concat(1, 2) AS r2, typeof(concat(1, 2)) AS t")
A = "aggregates"
case(A, "first_value_last_value_agg", "SELECT first_value(x) AS f, last_value(x) AS l FROM (SELECT * FROM t ORDER BY x)", {"t": NUMS})
both(A, "sum_string_column", "SELECT sum(s) AS r, typeof(sum(s)) AS t, avg(s) AS a FROM VALUES ('1'), ('2.5'), (NULL) AS v(s)")
A = "casts"
both(A, "bigint_eq_frac_string_modes", "SELECT id, id = '5.0' AS r FROM t WHERE id IS NOT NULL", T_NUM)
both(A, "string_gt_int_valid_only", "SELECT s, s > 10 AS r FROM t WHERE s IN ('5', '11', '9')", T_NUM)
both(A, "coalesce_types_modes", "SELECT coalesce(s, id) AS b, typeof(coalesce(s, id)) AS tb, coalesce(i, d) AS a FROM t WHERE s <> 'abc' OR s IS NULL", T_NUM)
both(A, "case_when_mixed_types_modes", "SELECT CASE WHEN id > 0 THEN 'x' ELSE 1 END AS b FROM t", T_NUM)
both(A, "divide_types_modes", "SELECT 5 / 2 AS a, typeof(5 / 2) AS ta, 7 div 2 AS b, typeof(7 div 2) AS tb")
both(A, "in_list_string_vs_int", "SELECT id FROM t WHERE id IN ('5', '10')", T_NUM)
both(A, "union_int_string", "SELECT 1 AS c UNION ALL SELECT 'a'")
both(A, "string_eq_bool", "SELECT 'true' = true AS a, 't' = true AS b")
both(A, "date_eq_bad_string", "SELECT DATE '2024-01-01' = 'garbage' AS r")
both(A, "int_col_times_int_overflow", "SELECT i * 2 AS r, typeof(i * 2) AS t FROM t WHERE i = 7", T_NUM)
both(A, "decimal_div_zero", "SELECT m / 0 AS r FROM t WHERE id = 5", T_NUM)
both(A, "abs_min_int", "SELECT abs(i) AS r FROM t WHERE i = -2147483648", T_NUM)
both(A, "cast_decimal_to_smaller_precision", "SELECT CAST(m AS DECIMAL(3,1)) AS r FROM t", T_NUM)
A = "collections"
both(A, "map_key_lookup_modes", "SELECT m['b'] AS r FROM (SELECT map('a', 1) AS m)")
both(A, "sequence_dates_default_step", "SELECT sequence(DATE '2024-02-27', DATE '2024-03-01') AS r")
A = "json"
both(A, "get_json_object_modes", "SELECT get_json_object('bad', '$.a') AS r, get_json_object('{\"a\": [1]}', '$.a[5]') AS r2")
A = "names"
case(A, "unaliased_ansi_arith", "SELECT a + 1, a / b, CAST(a AS STRING) FROM t", T_CUST, ansi=True)
case(A, "unaliased_date_literal_funcs", "SELECT date_add(d, 1), datediff(d, d), add_months(d, 1), trunc(d, 'MM'), date_trunc('MONTH', d) FROM (SELECT DATE '2024-01-31' AS d)")
case(A, "unaliased_string_literal_with_quote", "SELECT 'it''s', \"dq\"")
case(A, "unaliased_explode_alias_star", "SELECT * FROM (SELECT explode(array(1, 2)))")
case(A, "unaliased_get_item_nested", "SELECT s.a[0], s.m['k'].x FROM (SELECT named_struct('a', array(1), 'm', map('k', named_struct('x', 1))) AS s)")

# --- extra cases, batch 2 ---
A = "datetime"
DFMT = tbl([("s", "string")], [["20240305"], ["20230229"], ["2024-03-05"], ["03/05/2024"], ["  20240305"], [None]])
case(A, "to_date_yyyyMMdd", "SELECT s, to_date(s, 'yyyyMMdd') AS r FROM t", {"t": DFMT})
case(A, "to_date_MM_dd_yyyy", "SELECT s, to_date(s, 'MM/dd/yyyy') AS r FROM t", {"t": DFMT})
case(A, "try_to_date", "SELECT try_to_date('2024-13-01') AS a, try_to_date('05/03/2024', 'dd/MM/yyyy') AS b", ansi=True)
case(A, "to_timestamp_iso_z", "SELECT to_timestamp('2024-03-05T13:04:05.123Z') AS a, to_timestamp('2024-03-05T13:04:05.123+01:00') AS b, to_timestamp('2024-03-05T13:04:05Z', \"yyyy-MM-dd'T'HH:mm:ssX\") AS c")
case(A, "to_timestamp_numeric", "SELECT to_timestamp(1709643845) AS a, to_timestamp(1709643845.5) AS b")
case(A, "to_timestamp_fmt_fraction", "SELECT to_timestamp('2024-03-05 13:04:05.123', 'yyyy-MM-dd HH:mm:ss.SSS') AS a, to_timestamp('2024-03-05 13:04:05', 'yyyy-MM-dd HH:mm:ss.SSS') AS b")
case(A, "to_timestamp_ntz_and_cast", "SELECT to_timestamp_ntz('2024-03-05 13:04:05') AS a, CAST(TIMESTAMP '2024-03-05 13:04:05' AS TIMESTAMP_NTZ) AS b, typeof(to_timestamp_ntz('2024-03-05')) AS t")
case(A, "date_diff_aliases", "SELECT date_diff(DATE '2024-03-05', DATE '2024-03-01') AS a, datepart('YEAR', DATE '2024-03-05') AS b, date_part('MONTH', TIMESTAMP '2024-03-05 01:02:03') AS c, date_part('SECONDS', TIMESTAMP '2024-03-05 01:02:03.5') AS d")
case(A, "weekofyear_year_boundaries", "SELECT d, weekofyear(d) AS w, dayofweek(d) AS dow, weekday(d) AS wd FROM VALUES (DATE '2021-01-03'), (DATE '2021-01-04'), (DATE '2024-12-30'), (DATE '2027-01-01'), (DATE '2020-12-31') AS v(d)")
case(A, "date_format_millis_pattern", "SELECT date_format(ts, 'yyyy-MM-dd HH:mm:ss.SSS') AS r FROM t", T_DT)
case(A, "date_format_null_pattern", "SELECT date_format(TIMESTAMP '2024-03-05 00:00:00', NULL) AS r")
case(A, "last_day_month_end_ts", "SELECT last_day(TIMESTAMP '2024-02-10 10:00:00') AS a, last_day('2023-02-10') AS b")
case(A, "make_interval_and_add", "SELECT DATE '2024-01-31' + make_interval(0, 1) AS a, make_ym_interval(1, 2) AS b, make_dt_interval(1, 2, 3, 4.5) AS c")
case(A, "date_sub_month_end_via_interval", "SELECT DATE '2024-03-31' - INTERVAL 1 MONTH AS a, TIMESTAMP '2024-03-31 10:00:00' - INTERVAL 1 MONTH AS b")
both(A, "cast_date_to_int", "SELECT CAST(DATE '2024-01-01' AS INT) AS r")
case(A, "timestamp_compare_date", "SELECT TIMESTAMP '2024-01-01 00:00:00' = DATE '2024-01-01' AS a, TIMESTAMP '2024-01-01 00:00:01' > DATE '2024-01-01' AS b")
case(A, "extract_from_interval", "SELECT extract(DAY FROM INTERVAL '3 04:05:06' DAY TO SECOND) AS d, extract(HOUR FROM INTERVAL '3 04:05:06' DAY TO SECOND) AS h")
A = "strings"
case(A, "url_encode_decode", "SELECT url_encode('a b&c=d/é') AS e, url_decode('a+b%26c%3Dd') AS d")
case(A, "parse_url", "SELECT parse_url('https://ex.com:8080/p/a?x=1&y=2#frag', 'HOST') AS h, parse_url('https://ex.com:8080/p/a?x=1&y=2#frag', 'QUERY', 'y') AS q, parse_url('https://ex.com:8080/p/a?x=1', 'PATH') AS p, parse_url('https://ex.com/p?x=1#f', 'REF') AS r, parse_url('not a url', 'HOST') AS bad")
case(A, "regexp_digit_classes", "SELECT s, s RLIKE '^\\\\d+$' AS alldig, regexp_extract(s, '(\\\\d+)', 1) AS firstnum, regexp_replace(s, '\\\\d', '') AS nodig FROM t", T_STR)
case(A, "regexp_replace_dollar", "SELECT regexp_replace('a.b.c', '\\\\.', '\\\\$') AS a, regexp_replace('abc', '(b)', '[$1]') AS b, regexp_replace('aaa', 'a*', 'x') AS c")
case(A, "regexp_invalid_pattern", "SELECT regexp_like('abc', '(') AS r")
case(A, "lpad_empty_pad", "SELECT lpad('ab', 5, '') AS a, rpad('ab', 5, '') AS b")
case(A, "initcap_digits_punct", "SELECT initcap('123abc o''neil mcDONALD-smith a_b') AS r")
case(A, "trim_unicode_whitespace", "SELECT length(trim(concat(chr(160), 'a', chr(160)))) AS nbsp, length(trim(concat(chr(9), 'a'))) AS tab, length(trim(concat(chr(10), 'a', chr(13)))) AS nl")
case(A, "to_number_try_to_number", "SELECT to_number('$1,234.50', '$9,999.99') AS a, try_to_number('abc', '999') AS b")
case(A, "split_part", "SELECT split_part('a,b,c', ',', 2) AS a, split_part('a,b,c', ',', -1) AS b, split_part('a,b,c', ',', 5) AS c")
case(A, "str_comparison_collation", "SELECT 'a' < 'B' AS a, 'é' > 'z' AS b, 'abc' < 'abcd' AS c")
case(A, "concat_ws_only_nulls", "SELECT concat_ws(',', NULL, NULL) AS a, concat_ws(',', '', '') AS b, concat_ws('', 'a', 'b') AS c")
case(A, "substring_unicode", "SELECT substring('ünïcödé', 2, 3) AS a, reverse('ünï') AS b, upper('ünïcödé') AS c")
case(A, "sentences_like_split_regex", "SELECT split('a1b22c333', '[0-9]+') AS a, split('  a  b ', ' ') AS b, split('abc', '') AS c, split('', ',') AS d")
case(A, "char_varchar_behaviour", "SELECT CAST('ab' AS CHAR(4)) = 'ab' AS eq, length(CAST('ab' AS CHAR(4))) AS l, CAST('abcdef' AS VARCHAR(3)) AS v")
case(A, "lower_upper_numbers", "SELECT lower(123) AS a, upper(true) AS b, length(12345) AS c")
K16 = "'0000111122223333'"
K24 = "'000011112222333344445555'"
K32 = "'abcdefghijklmnop12345678ABCDEFGH'"
case(A, "aes_encrypt_fixed_iv", "SELECT base64(aes_encrypt('Spark SQL', " + K16 + ", 'GCM', 'DEFAULT', unhex('000000000000000000000000'))) AS gcm, base64(aes_encrypt('Spark SQL', " + K16 + ", 'ECB')) AS ecb, base64(aes_encrypt('Spark SQL', " + K24 + ", 'CBC', 'PKCS', unhex('00000000000000000000000000000000'))) AS cbc, base64(aes_encrypt('Spark', " + K32 + ", 'gcm', 'NONE', unhex('0102030405060708090a0b0c'), 'an aad')) AS gcm_aad, base64(aes_encrypt(unhex('00ff'), " + K32 + ", 'ECB', 'PKCS')) AS binary_in")
case(A, "aes_round_trip", "SELECT s, CAST(aes_decrypt(aes_encrypt(s, " + K16 + "), " + K16 + ") AS STRING) AS gcm, CAST(aes_decrypt(aes_encrypt(s, " + K24 + ", 'CBC'), " + K24 + ", 'CBC') AS STRING) AS cbc, CAST(aes_decrypt(aes_encrypt(s, " + K32 + ", 'ECB', 'PKCS'), " + K32 + ", 'ECB', 'PKCS') AS STRING) AS ecb, length(aes_encrypt(s, " + K16 + ")) AS gcm_len, length(aes_encrypt(s, " + K16 + ", 'CBC')) AS cbc_len FROM t", T_STR)
case(A, "aes_decrypt_spark_docs", "SELECT CAST(aes_decrypt(unhex('83F16B2AA704794132802D248E6BFD4E380078182D1544813898AC97E709B28A94'), " + K16 + ") AS STRING) AS a, CAST(aes_decrypt(unbase64('3lmwu+Mw0H3fi5NDvcu9lg=='), '1234567890abcdef', 'ECB', 'PKCS') AS STRING) AS b, CAST(aes_decrypt(unbase64('2NYmDCjgXTbbxGA3/SnJEfFC/JQ7olk2VQWReIAAFKo='), '1234567890abcdef', 'CBC') AS STRING) AS c, CAST(aes_decrypt(unbase64('AAAAAAAAAAAAAAAAAAAAAPSd4mWyMZ5mhvjiAPQJnfg='), " + K32 + ", 'CBC', 'DEFAULT') AS STRING) AS d, CAST(aes_decrypt(unbase64('AAAAAAAAAAAAAAAAQiYi+sTLm7KD9UcZ2nlRdYDe/PX4'), " + K32 + ", 'GCM', 'DEFAULT', 'This is an AAD mixed into the input') AS STRING) AS e")
case(A, "aes_nulls", "SELECT aes_encrypt(CAST(NULL AS STRING), " + K16 + ") IS NULL AS a, aes_decrypt(CAST(NULL AS BINARY), " + K16 + ") IS NULL AS b, aes_encrypt('x', CAST(NULL AS STRING)) IS NULL AS c")
case(A, "try_aes_decrypt_wrong_key", "SELECT try_aes_decrypt(unhex('83F16B2AA704794132802D248E6BFD4E380078182D1544813898AC97E709B28A94'), '1111111122223333') AS r, CAST(try_aes_decrypt(unhex('83F16B2AA704794132802D248E6BFD4E380078182D1544813898AC97E709B28A94'), " + K16 + ") AS STRING) AS ok")
case(A, "aes_decrypt_wrong_key", "SELECT aes_decrypt(unhex('83F16B2AA704794132802D248E6BFD4E380078182D1544813898AC97E709B28A94'), '1111111122223333') AS r")
case(A, "aes_bad_key_length", "SELECT aes_encrypt('x', 'short') AS r")
case(A, "aes_unsupported_mode", "SELECT aes_encrypt('x', " + K16 + ", 'GCM', 'PKCS') AS r")
A = "json"
case(A, "get_json_object_number_format", "SELECT get_json_object('{\"a\": 1.0, \"b\": 1e2, \"c\": 12345678901234567890, \"d\": -0.5, \"e\": true, \"f\": \"str\"}', '$.a') AS a, get_json_object('{\"b\": 1e2}', '$.b') AS b, get_json_object('{\"c\": 12345678901234567890}', '$.c') AS c, get_json_object('{\"e\": true}', '$.e') AS e")
case(A, "get_json_object_nested_raw", "SELECT get_json_object('{\"a\": {\"b\" : [1, 2], \"c\": \"x\"}}', '$.a') AS r, get_json_object('{\"a\": [ {\"b\": 1} ]}', '$.a') AS r2")
case(A, "get_json_object_unicode_escape", "SELECT get_json_object('{\"a\": \"caf\\\\u00e9 \\\\\"q\\\\\"\"}', '$.a') AS r")
case(A, "get_json_object_dup_keys", "SELECT get_json_object('{\"a\": 1, \"a\": 2}', '$.a') AS r")
case(A, "from_json_string_field_of_object", "SELECT from_json('{\"a\": {\"x\": 1}, \"b\": [1, 2]}', 'a STRING, b STRING') AS r")
case(A, "from_json_map_of_arrays", "SELECT from_json('{\"k\": [1, 2], \"j\": null}', 'MAP<STRING, ARRAY<INT>>') AS r")
case(A, "from_json_array_top_level_struct_schema", "SELECT from_json('[{\"a\": 1}, {\"a\": 2}]', 'a INT') AS r")
case(A, "from_json_bool_and_null", "SELECT from_json('{\"a\": true, \"b\": null}', 'a BOOLEAN, b INT, c STRING') AS r")
case(A, "from_json_decimal", "SELECT from_json('{\"a\": 12.345}', 'a DECIMAL(10,2)') AS r")
case(A, "to_json_nulls_omitted", "SELECT to_json(named_struct('a', CAST(NULL AS INT), 'b', 1)) AS r, to_json(array(CAST(NULL AS INT))) AS arr, to_json(map('k', CAST(NULL AS INT))) AS m")
case(A, "to_json_nested", "SELECT to_json(named_struct('a', array(named_struct('b', map('c', 1))))) AS r")
case(A, "to_json_double_formats", "SELECT to_json(named_struct('a', 1.0E10D, 'b', 0.1D, 'c', CAST('NaN' AS DOUBLE), 'd', 100.0D)) AS r")
case(A, "from_json_roundtrip_to_json", "SELECT to_json(from_json(j, 'a INT, b STRING')) AS r FROM t", T_JS)
case(A, "schema_of_json_types", "SELECT schema_of_json('{\"i\": 1, \"big\": 12345678901, \"f\": 1.5, \"b\": true, \"n\": null, \"s\": \"2024-01-01\"}') AS r")
case(A, "json_tuple_nested_value", "SELECT json_tuple('{\"a\": {\"b\": 1}, \"c\": [1]}', 'a', 'c')")
case(A, "get_json_object_wildcard_root_array", "SELECT get_json_object('[{\"a\": 1}, {\"a\": 2}]', '$[*].a') AS r, get_json_object('[{\"a\": 1}]', '$[*].a') AS single")
A = "aggregates"
case(A, "count_distinct_nulls", "SELECT count(DISTINCT qty) AS a, count(DISTINCT CAST(NULL AS INT)) AS b, count(qty) AS c FROM sales", T_SALES)
case(A, "avg_decimal_type", "SELECT avg(amount) AS a, typeof(avg(amount)) AS t, typeof(sum(amount)) AS ts FROM sales", T_SALES)
case(A, "array_agg_sorted", "SELECT sort_array(array_agg(product)) AS r FROM sales", T_SALES)
case(A, "listagg_string_agg", "SELECT listagg(product, ',') WITHIN GROUP (ORDER BY product) AS l FROM sales", T_SALES)
case(A, "string_agg_func", "SELECT string_agg(product, '|') WITHIN GROUP (ORDER BY product DESC) AS l FROM sales WHERE region = 'east'", T_SALES)
case(A, "collect_list_structs_sorted", "SELECT region, array_sort(collect_list(named_struct('p', product, 'q', qty))) AS r FROM sales WHERE region IS NOT NULL GROUP BY region", T_SALES)
case(A, "group_by_case_expr", "SELECT CASE WHEN price > 2 THEN 'hi' ELSE 'lo' END AS band, count(*) AS n FROM sales GROUP BY CASE WHEN price > 2 THEN 'hi' ELSE 'lo' END", T_SALES)
case(A, "grouping_sets", "SELECT region, product, count(*) AS n FROM sales GROUP BY GROUPING SETS ((region), (product), ())", T_SALES)
case(A, "pivot", "SELECT * FROM (SELECT region, product, qty FROM sales) PIVOT (sum(qty) FOR product IN ('apple', 'kiwi' AS k))", T_SALES)
case(A, "unpivot", "SELECT * FROM (SELECT 1 AS id, 10 AS a, 20 AS b) UNPIVOT (val FOR col IN (a, b))")
case(A, "stack_func", "SELECT stack(2, 'a', 1, 'b', 2)")
case(A, "stack_aliased", "SELECT stack(2, 'a', 1, 'b', 2) AS (k, v)")
case(A, "nan_negzero_grouping", "SELECT d, count(*) AS n FROM VALUES (CAST('NaN' AS DOUBLE)), (CAST('NaN' AS DOUBLE)), (0.0D), (-0.0D), (NULL) AS v(d) GROUP BY d")
case(A, "distinct_negzero", "SELECT DISTINCT d FROM VALUES (0.0D), (-0.0D) AS v(d)")
case(A, "window_nth_value_lag_default", f"SELECT region, ts, nth_value(product, 2) OVER (PARTITION BY region ORDER BY ts) AS n2, lag(product, 1, 'none') OVER (PARTITION BY region ORDER BY ts) AS lg {W}", T_SALES)
case(A, "window_range_interval", "SELECT ts, count(*) OVER (ORDER BY ts RANGE BETWEEN INTERVAL 1 DAY PRECEDING AND CURRENT ROW) AS c FROM sales WHERE ts IS NOT NULL", T_SALES)
case(A, "window_rows_frame_sum", "SELECT x, sum(x) OVER (ORDER BY x ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s3, avg(x) OVER (ORDER BY x ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS a FROM t", {"t": NUMS})
case(A, "window_count_distinct_error", "SELECT count(DISTINCT x) OVER () AS c FROM t", {"t": NUMS})
case(A, "sum_float_precision", "SELECT sum(d) AS s FROM VALUES (0.1D), (0.2D), (0.3D) AS v(d)")
case(A, "min_max_nan", "SELECT min(d) AS mn, max(d) AS mx FROM VALUES (1.0D), (CAST('NaN' AS DOUBLE)), (-1.0D) AS v(d)")
case(A, "kurtosis_skewness", "SELECT round(skewness(x), 6) AS sk, round(kurtosis(x), 6) AS ku FROM t", {"t": NUMS})
case(A, "bit_aggs", "SELECT bit_and(x) AS ba, bit_or(x) AS bo, bit_xor(x) AS bx FROM t", {"t": NUMS})
A = "casts"
case(A, "cast_to_string_various", "SELECT CAST(true AS STRING) AS a, CAST(CAST(1.5 AS FLOAT) AS STRING) AS b, CAST(DATE '2024-01-05' AS STRING) AS c, CAST(X'6869' AS STRING) AS d, CAST(array(1.5D, NULL) AS STRING) AS e, CAST(TIMESTAMP '2024-01-05 01:02:03.100' AS STRING) AS f, CAST(123456789012L AS STRING) AS g, CAST(1.10BD AS STRING) AS h")
case(A, "cast_decimal_rounding_half_up", "SELECT CAST('1.5' AS DECIMAL(2,0)) AS a, CAST('-1.5' AS DECIMAL(2,0)) AS b, CAST('12.345' AS DECIMAL(10,2)) AS c, CAST('12.355' AS DECIMAL(10,2)) AS d, CAST(0.125D AS DECIMAL(5,2)) AS e")
case(A, "cast_string_to_decimal_forms", "SELECT CAST('1e2' AS DECIMAL(10,2)) AS a, CAST(' 3.5 ' AS DECIMAL(5,2)) AS b, CAST('abc' AS DECIMAL(5,2)) AS c, CAST('.5' AS DECIMAL(5,2)) AS d")
case(A, "decimal_mult_precision", "SELECT CAST(1.1 AS DECIMAL(38,10)) * CAST(2.2 AS DECIMAL(38,10)) AS r, typeof(CAST(1.1 AS DECIMAL(38,10)) * CAST(2.2 AS DECIMAL(38,10))) AS t")
case(A, "int_times_decimal_type", "SELECT 2 * 1.5 AS a, typeof(2 * 1.5) AS ta, 2L * 1.5 AS b, typeof(2L * 1.5) AS tb, 1.5D * 2 AS c, typeof(1.5 + 1.5D) AS tc")
case(A, "float_to_int_truncation", "SELECT CAST(CAST(2.7 AS FLOAT) AS INT) AS a, CAST(-2.7D AS BIGINT) AS b, CAST(2.9999999999D AS INT) AS c")
case(A, "cast_timestamp_to_date_and_back", "SELECT CAST(CAST(TIMESTAMP '2024-03-05 23:59:59' AS DATE) AS TIMESTAMP) AS r")
case(A, "boolean_comparisons", "SELECT true > false AS a, true = 1 AS b, 'true' = true AS c")
case(A, "implicit_string_date_arith", "SELECT date_add('2024-01-31', '1') AS a, '2024-01-31' + 1 AS b")
case(A, "numeric_string_compare", "SELECT '10' > '9' AS str_str, '10' > 9 AS str_int, 10 > '9' AS int_str, '1e1' = 10 AS sci")
A = "names"
case(A, "table_alias_case", "SELECT T.Name, x.cust_id FROM t AS T JOIN t AS x ON T.cust_id = x.CUST_ID", T_CUST)
case(A, "unaliased_agg_of_expr", "SELECT sum(a + b), max(upper(name)), count(a IS NULL), avg(CAST(a AS DOUBLE)) FROM t", T_CUST)
case(A, "unaliased_string_funcs", "SELECT trim(name), lower(name), substr(name, 2), replace(name, 'a', 'b'), split(name, 'l'), concat_ws('-', name, name) FROM t", T_CUST)
case(A, "unaliased_json_funcs", "SELECT get_json_object('{}', '$.a'), from_json('{}', 'a INT'), to_json(named_struct('a', 1)), json_tuple('{}', 'a')")
case(A, "unaliased_datetime_funcs", "SELECT to_timestamp('2024-01-01'), date_format(TIMESTAMP '2024-01-01 00:00:00', 'yyyy'), unix_timestamp(TIMESTAMP '2024-01-01 00:00:00'), from_unixtime(0), date_trunc('HOUR', TIMESTAMP '2024-01-01 00:00:00'), months_between(DATE '2024-02-01', DATE '2024-01-01')")
case(A, "unaliased_collection_funcs", "SELECT size(array(1)), array_contains(array(1), 1), element_at(array(1), 1), sort_array(array(2, 1)), array_distinct(array(1, 1)), sequence(1, 2)")
case(A, "unaliased_window_funcs", "SELECT row_number() OVER (ORDER BY a), rank() OVER (ORDER BY a), lag(a) OVER (ORDER BY a) FROM t", T_CUST)
case(A, "unaliased_cast_types", "SELECT CAST(a AS DOUBLE), CAST(a AS DECIMAL(10,2)), CAST(name AS TIMESTAMP), CAST(a AS BOOLEAN) FROM t", T_CUST)
case(A, "unaliased_bool_literals_null_ops", "SELECT NULL IS NULL, true OR false, coalesce(NULL, 1), nullif(1, 1), 1 <=> NULL")
case(A, "unaliased_between_not", "SELECT a NOT BETWEEN 1 AND 2, a NOT IN (1), name NOT LIKE 'a%', name ILIKE 'A%', name RLIKE 'a' FROM t", T_CUST)
case(A, "unaliased_arith_literals", "SELECT 1 + 2, 3 * 4.0, 10 / 3, 7 % 3, 7 div 2, 2 - -1")
case(A, "group_by_output_name_agg_unaliased", "SELECT upper(name), count(*) FROM t GROUP BY upper(name)", T_CUST)
case(A, "subquery_without_alias", "SELECT * FROM (SELECT a FROM t) WHERE a > 1", T_CUST)
case(A, "cte_shadows_table", "WITH t AS (SELECT 42 AS answer) SELECT * FROM t", T_CUST)
case(A, "union_later_branch_unnamed_values", "SELECT 1 AS key, 'x' AS name, 2 AS n UNION ALL SELECT -1, NULL, NULL UNION ALL SELECT 0, 'y', 0")
case(A, "union_later_branch_same_column_twice", "SELECT a AS x, b AS y FROM t UNION ALL SELECT a, a FROM t", T_CUST)
A = "joins"
case(A, "left_join_using_select_b_star", "SELECT a.*, b.* FROM a LEFT JOIN b USING (id)", T_J)
case(A, "full_join_using_two_keys_different_case", "SELECT * FROM a FULL JOIN b USING (K1, k2)", T_K2)
case(A, "join_using_then_where_on_key", "SELECT * FROM a FULL JOIN b USING (id) WHERE id IS NULL", T_J)
case(A, "join_using_group_by_key", "SELECT id, count(*) AS n FROM a FULL JOIN b USING (id) GROUP BY id", T_J)
case(A, "join_using_order_by_key", "SELECT id, x, y FROM a JOIN b USING (id) ORDER BY id, x, y", T_J, ordered=True)
case(A, "natural_cross_no_common", "SELECT * FROM (SELECT 1 AS p) NATURAL JOIN (SELECT 2 AS q)")
case(A, "lateral_join_subquery", "SELECT a.id, s.m FROM a, LATERAL (SELECT max(y) AS m FROM b WHERE b.id = a.id) s", T_J)
case(A, "inner_join_star_dup_names", "SELECT * FROM a JOIN a AS a2 ON a.id = a2.id", {"a": JA})
A = "literals"
case(A, "string_literal_unicode_raw", "SELECT 'ünïcödé' AS a, length('ünïcödé') AS l, '日本' AS j")
case(A, "array_literal_bracket_syntax_error", "SELECT [1, 2] AS r")
case(A, "struct_literal_functions", "SELECT struct(1 AS a, 'x' AS b).b AS r, named_struct('a', NULL) AS n")
case(A, "interval_negative_and_compare", "SELECT INTERVAL -1 DAY AS a, INTERVAL '1' DAY > INTERVAL '23' HOUR AS b, INTERVAL '-1-6' YEAR TO MONTH AS c")
case(A, "exponent_double_type_names", "SELECT 1e3, 1.5e-3, 2E10")
case(A, "very_small_decimal", "SELECT 0.0000001 AS a, typeof(0.0000001) AS t, 1.0E-7D AS d, CAST(0.0000001 AS STRING) AS s")
case(A, "null_in_arithmetic", "SELECT NULL + 1 AS a, typeof(NULL + 1) AS t, NULL = NULL AS b, NULL || 'x' AS c")
case(A, "bigint_literal_typename", "SELECT typeof(1BD) AS a, 1BD AS b, typeof(-1S) AS c, -128Y AS d")

# ---------------------------------------------------------------------------
# Runner
A = "datetime"
case(A, "time_window_tumbling_null_time", "SELECT window.start AS s, window.end AS e, count(*) AS n FROM sales GROUP BY window(ts, '1 day')", T_SALES)
case(A, "time_window_sliding_counts", "SELECT window.start AS s, window.end AS e, count(*) AS n, sum(qty) AS q FROM sales GROUP BY window(ts, '2 days', '1 day')", T_SALES)
case(A, "time_window_sliding_uneven", "SELECT window.start AS s, window.end AS e, count(*) AS n FROM sales GROUP BY window(ts, '1 day', '10 hours')", T_SALES)
case(A, "time_window_sliding_keyed_having", "SELECT region, window, count(*) AS n FROM sales WHERE region IS NOT NULL GROUP BY region, window(ts, '3 days', '1 day') HAVING count(*) > 1", T_SALES)
case(A, "time_window_sliding_struct_and_filter", "SELECT window(ts, '2 days', '1 day') AS w, max(product) AS p FROM sales WHERE qty > 1 GROUP BY window(ts, '2 days', '1 day')", T_SALES)

# ---------------------------------------------------------------------------
def spark_session():
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[1]")
             .appName("lakeflow-oracle")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.ansi.enabled", "false")
             .config("spark.driver.memory", "1g")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "1")
             .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("OFF")
    import logging
    logging.getLogger("SQLQueryContextLogger").disabled = True  # expected errors are recorded, not logged
    return spark


def parse_input(v, ty):
    if v is None:
        return None
    if ty in ("string",):
        return v
    if ty in ("int", "bigint", "smallint", "tinyint"):
        return int(v)
    if ty in ("double", "float"):
        if isinstance(v, str):
            return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[v])
        return float(v)
    if ty == "boolean":
        return bool(v)
    if ty.startswith("decimal"):
        return Decimal(v)
    if ty == "date":
        return _dt.date.fromisoformat(v)
    if ty == "timestamp":
        return _dt.datetime.fromisoformat(v)
    raise ValueError(ty)


def encode_input(v, ty):
    """Normalise an input value into the JSON encoding."""
    if v is None:
        return None
    if ty in ("double", "float") and isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return v


def f32_shortest(x):
    target = _struct.unpack("f", _struct.pack("f", x))[0]
    for p in range(1, 18):
        s = "%.*g" % (p, x)
        if _struct.unpack("f", _struct.pack("f", float(s)))[0] == target:
            return float(s)
    return x


def fmt_ts(v):
    s = v.strftime("%Y-%m-%d %H:%M:%S")
    if v.microsecond:
        s += ("." + "%06d" % v.microsecond).rstrip("0")
    return s


def enc(v, dt):
    from pyspark.sql import types as T
    if v is None:
        return None
    if isinstance(dt, (T.StringType, T.VarcharType, T.CharType)):
        return v
    if isinstance(dt, T.BooleanType):
        return bool(v)
    if isinstance(dt, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return int(v)
    if isinstance(dt, (T.FloatType, T.DoubleType)):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return f32_shortest(v) if isinstance(dt, T.FloatType) else float(v)
    if isinstance(dt, T.DecimalType):
        return format(v, "f")
    if isinstance(dt, (T.TimestampType, T.TimestampNTZType)):
        return fmt_ts(v)
    if isinstance(dt, T.DateType):
        return v.isoformat()
    if isinstance(dt, T.BinaryType):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(dt, T.ArrayType):
        return [enc(e, dt.elementType) for e in v]
    if isinstance(dt, T.MapType):
        return [[enc(k, dt.keyType), enc(x, dt.valueType)] for k, x in v.items()]
    if isinstance(dt, T.StructType):
        return {f.name: enc(v[i], f.dataType) for i, f in enumerate(dt.fields)}
    return str(v)


def first_line(e):
    msg = str(e).strip()
    je = getattr(e, "java_exception", None)
    if msg.startswith("An error occurred while calling") and je is not None:
        # Py4JJavaError: unwrap to the root Spark exception message
        while je.getCause() is not None and not je.getMessage():
            je = je.getCause()
        msg = je.getMessage() or je.toString()
    for line in msg.splitlines():
        if line.strip():
            return line.strip()
    return type(e).__name__


def run_case(spark, c):
    from pyspark.sql import types as T
    from pyspark.sql import functions as F
    spark.conf.set("spark.sql.ansi.enabled", "true" if c["ansi"] else "false")
    for tname, t in c["tables"].items():
        schema = ", ".join(f"`{n}` {ty}" for n, ty in t["columns"])
        rows = [tuple(parse_input(v, ty) for v, (_, ty) in zip(r, t["columns"])) for r in t["rows"]]
        spark.createDataFrame(rows, schema).createOrReplaceTempView(tname)
    out = {k: c[k] for k in ("name",)}
    out["tables"] = {tn: {"columns": t["columns"],
                          "rows": [[encode_input(v, ty) for v, (_, ty) in zip(r, t["columns"])] for r in t["rows"]]}
                     for tn, t in c["tables"].items()}
    out["sql"] = c["sql"]
    out["ansi"] = c["ansi"]
    out["ordered"] = c["ordered"]
    try:
        df = spark.sql(c["sql"])
        names = df.columns
        fields = df.schema.fields
        interval_types = (T.DayTimeIntervalType, T.YearMonthIntervalType, T.CalendarIntervalType)
        if any(isinstance(f.dataType, interval_types) for f in fields):
            tmp = df.toDF(*[f"_c{i}" for i in range(len(names))])
            tmp = tmp.select([F.col(f"_c{i}").cast("string") if isinstance(f.dataType, interval_types)
                              else F.col(f"_c{i}") for i, f in enumerate(fields)])
            rows = tmp.collect()
            enc_types = [T.StringType() if isinstance(f.dataType, interval_types) else f.dataType for f in fields]
        else:
            rows = df.collect()
            enc_types = [f.dataType for f in fields]
        enc_rows = [[enc(r[i], enc_types[i]) for i in range(len(fields))] for r in rows]
        if not c["ordered"]:
            # multiset comparison: store in a canonical order so regeneration is diff-stable
            enc_rows.sort(key=lambda row: json.dumps(row, sort_keys=True))
        out["expected"] = {
            "columns": [[n, f.dataType.simpleString()] for n, f in zip(names, fields)],
            "rows": enc_rows,
        }
    except Exception as e:  # Spark refused the query
        out["error"] = first_line(e)
    finally:
        for tname in c["tables"]:
            spark.catalog.dropTempView(tname)
    return out


def main(argv):
    areas = argv[1:] or list(CASES)
    spark = spark_session()
    total = 0
    for area in areas:
        results = []
        for c in CASES[area]:
            r = run_case(spark, c)
            results.append(r)
            status = "ERROR " + r["error"][:100] if "error" in r else "ok"
            print(f"[{area}] {c['name']}: {status}", flush=True)
        path = os.path.join(HERE, f"{area}.json")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("[\n")
            for i, r in enumerate(results):
                fh.write(json.dumps(r, ensure_ascii=False, allow_nan=False))
                fh.write(",\n" if i + 1 < len(results) else "\n")
            fh.write("]\n")
        total += len(results)
        print(f"wrote {path}: {len(results)} cases", flush=True)
    print(f"total {total} cases; spark {spark.version}")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv)
