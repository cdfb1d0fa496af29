from __future__ import annotations

import ipaddress

import pytest

from proxy.yamlspec import (
    At,
    Fields,
    Invalid,
    Mark,
    Problems,
    YList,
    YMap,
    enum_of,
    locate,
    parse_yaml,
    plain,
    to_bool,
    to_cidr,
    to_duration,
    to_size,
    to_str,
    to_url,
)


def read(text: str) -> tuple[Fields, Problems]:
    problems = Problems()
    data = parse_yaml(text, "t.yaml", problems)
    return Fields.of(data, At(Mark("t.yaml", 1, 1)), problems), problems


def test_values_are_plain_and_located() -> None:
    problems = Problems()
    data = parse_yaml("a:\n  b: [1, two]\n  c: 'x'\n", "t.yaml", problems)
    assert not problems
    assert plain(data) == {"a": {"b": [1, "two"], "c": "x"}}
    assert isinstance(data, YMap) and isinstance(data["a"]["b"], YList)
    assert data["a"].key_marks["c"] == Mark("t.yaml", 3, 3)
    assert data["a"].value_marks["c"] == Mark("t.yaml", 3, 6)
    assert data["a"]["b"].item_marks[1] == Mark("t.yaml", 2, 10)
    assert data["a"].raw == {}  # only plain scalars keep their text; flow lists and quoted strings do not
    assert data["a"]["b"].raw == ["1", "two"]


def test_duplicate_keys_reported_at_second() -> None:
    problems = Problems()
    parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "t.yaml", problems)
    assert problems.lines() == [
        "t.yaml:4:3: b.c: duplicate key (first defined at line 3)",
        "t.yaml:5:1: a: duplicate key (first defined at line 1)",
    ]


def test_keys_are_taken_as_written() -> None:
    problems = Problems()
    data = parse_yaml("no: 1\n1: 2\n", "t.yaml", problems)
    assert plain(data) == {"no": 1, "1": 2}


def test_syntax_error_has_position() -> None:
    problems = Problems()
    assert parse_yaml("a: [1\n", "t.yaml", problems) is None
    (line,) = problems.lines()
    assert line.startswith("t.yaml:2:1: invalid YAML: ")


def test_empty_document_is_none() -> None:
    problems = Problems()
    assert parse_yaml("# nothing\n", "t.yaml", problems) is None
    assert not problems


@pytest.mark.parametrize(
    ("snippet", "read_as", "expected"),
    [
        ("k: yes\n", "boolean", "t.yaml:1:4: k: write true or false, not yes (YAML 1.1 reads yes as true)"),
        ("k: off\n", "boolean", "t.yaml:1:4: k: write true or false, not off (YAML 1.1 reads off as false)"),
        ("k: 'yes'\n", "boolean", "t.yaml:1:4: k: expected true or false, got 'yes'"),
        ("k: 1:30\n", "duration",
         "t.yaml:1:4: k: YAML 1.1 reads the unquoted 1:30 as the base-60 number 90; "
         "write a duration with units, like '1m30s'"),
        ("k: 30\n", "duration",
         "t.yaml:1:4: k: expected a duration like '30s', got the number 30 (add a unit: ms, s, m, h, d)"),
        ("k: 30 secs\n", "duration", "t.yaml:1:4: k: expected a duration like '30s', got '30 secs'"),
        ("k: 10 MB/s\n", "size", "t.yaml:1:4: k: expected a size like '10MiB' or '512KB', got '10 MB/s'"),
        ("k: no\n", "string",
         't.yaml:1:4: k: expected a string, got the boolean false '
         '(YAML 1.1 reads the unquoted no as the boolean false; quote it: "no")'),
        ("k: 12\n", "string", 't.yaml:1:4: k: expected a string, got the number 12 (quote it: "12")'),
        ("k: true\n", "integer", "t.yaml:1:4: k: expected an integer, got the boolean true"),
        ("k: 1.5\n", "integer", "t.yaml:1:4: k: expected an integer, got the number 1.5"),
        ("k: [1]\n", "number", "t.yaml:1:4: k: expected a number, got a list"),
        ("k: null\n", "integer", "t.yaml:1:4: k: must not be null (remove the key to use the default, 7)"),
    ],
)
def test_reader_errors(snippet: str, read_as: str, expected: str) -> None:
    f, problems = read(snippet)
    default = 7 if read_as == "integer" else None
    assert getattr(f, read_as)("k", default) == default
    assert problems.lines() == [expected]


def test_unknown_key_suggestion_and_all_errors_collected() -> None:
    f, problems = read("nmae: x\nport: yes\ntimeout: 5\nextra: 1\n")
    f.string("name")
    f.integer("port")
    f.duration("timeout")
    f.done()
    assert problems.lines() == [
        "t.yaml:1:1: nmae: unknown key; did you mean 'name'?",
        "t.yaml:2:7: port: expected an integer, got the boolean true "
        '(YAML 1.1 reads the unquoted yes as the boolean true; quote it: "yes")',
        "t.yaml:3:10: timeout: expected a duration like '30s', got the number 5 (add a unit: ms, s, m, h, d)",
        "t.yaml:4:1: extra: unknown key",
    ]
    assert problems.as_json()[0] == {
        "file": "t.yaml", "line": 1, "col": 1, "field": "nmae",
        "message": "unknown key; did you mean 'name'?",
    }


def test_nested_and_context() -> None:
    f, problems = read("rules:\n  - id: cot\n    window: 30 secs\n  - 3\n")
    for rule in f.maps("rules"):
        rule = rule.with_context(f"rule '{rule.string('id')}'")
        rule.duration("window")
        rule.done()
    f.done()
    assert problems.lines() == [
        "t.yaml:3:13: rule 'cot': window: expected a duration like '30s', got '30 secs'",
        "t.yaml:4:5: rules[1]: expected a mapping, got the number 3",
    ]


def test_required_and_list_items() -> None:
    f, problems = read("nets: [10.0.0.0/8, bogus, '::1']\n")
    assert f.list_of("nets", to_cidr) == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1"))
    f.string("name", required=True)
    assert problems.lines() == [
        "t.yaml:1:1: name: is required",
        "t.yaml:1:20: nets[1]: expected an IP network like '10.0.0.0/8', got 'bogus' "
        "('bogus' does not appear to be an IPv4 or IPv6 network)",
    ]


def test_range_checks() -> None:
    f, problems = read("n: 0\nd: 2h\n")
    assert f.integer("n", 5, min=1) == 5
    assert f.duration("d", 1.0, max=3600) == 1.0
    assert problems.lines() == [
        "t.yaml:1:4: n: must be at least 1, got 0",
        "t.yaml:2:4: d: must be at most 3600, got 7200.0",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("1m30s", 90), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert to_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "size"),
    [("10MiB", 10 * 1024**2), ("512KB", 512_000), ("1GB", 10**9), (4096, 4096), ("16KiB", 16384), ("7", 7)],
)
def test_sizes(value: object, size: int) -> None:
    assert to_size(value) == size


def test_converters_misc() -> None:
    assert to_bool(True, "true") is True
    assert to_str("x") == "x"
    assert to_url("https://api.example.com/v1/") == "https://api.example.com/v1"
    with pytest.raises(Invalid, match="http or https"):
        to_url("ftp://x")
    with pytest.raises(Invalid, match="no query"):
        to_url("https://x/?a=1")
    with pytest.raises(Invalid, match="did you mean 'bearer'"):
        enum_of(("bearer", "none"))("baerer")
    with pytest.raises(Invalid, match="negative"):
        to_size(-1)


def test_locate_for_flags() -> None:
    problems = Problems()
    f = Fields.of(locate({"a": {"b": "x"}}, "<flags>"), At(Mark("<flags>")), problems)
    f.map("a").integer("b")
    assert problems.lines() == ["<flags>: a.b: expected an integer, got 'x'"]


def test_merge_keys_and_tags_refused() -> None:
    problems = Problems()
    parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\nt: !custom 1\n", "t.yaml", problems)
    assert problems.lines() == [
        "t.yaml:3:3: other: merge keys (<<) are not supported; repeat the keys",
        "t.yaml:4:4: t: unsupported YAML tag !custom",
    ]
