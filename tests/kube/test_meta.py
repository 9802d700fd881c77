"""Tests for kubemark.kube.meta: time formats, names and upstream validation messages."""

from __future__ import annotations

import random
import re
import uuid

import pytest

from kubemark.kube.meta import (
    NAME_SUFFIX_ALPHABET,
    generate_name_suffix,
    new_uid,
    now_micro,
    now_rfc3339,
    parse_time,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_label_value,
    validate_qualified_name,
)

EPOCH = 1795383607.123456  # 2026-11-22T21:40:07.123456Z


def test_time_formats() -> None:
    assert now_rfc3339(lambda: EPOCH) == "2026-11-22T21:40:07Z"
    assert now_micro(lambda: EPOCH) == "2026-11-22T21:40:07.123456Z"
    assert now_micro(lambda: 0.0) == "1970-01-01T00:00:00.000000Z"


def test_parse_time() -> None:
    assert parse_time("2026-11-22T21:40:07Z") == 1795383607
    assert parse_time("2026-11-22T21:40:07.5Z") == 1795383607.5
    assert parse_time("2026-11-22T22:40:07+01:00") == 1795383607
    assert parse_time("2026-11-22T19:40:07-02:00") == 1795383607
    assert parse_time(now_micro(lambda: EPOCH)) == pytest.approx(EPOCH, abs=1e-6)
    assert parse_time(now_rfc3339(lambda: EPOCH)) == int(EPOCH)
    for bad in ["", "2026-11-22", "2026-13-01T00:00:00Z", "yesterday", "2026-11-22T21:40:07", "2026-11-22 21:40:07Z"]:
        with pytest.raises(ValueError):
            parse_time(bad)


def test_uid_and_suffix() -> None:
    uid = new_uid()
    assert uuid.UUID(uid).version == 4 and uid != new_uid()
    suffix = generate_name_suffix()
    assert len(suffix) == 5 and set(suffix) <= set(NAME_SUFFIX_ALPHABET)
    assert generate_name_suffix(8, random.Random(1)) == generate_name_suffix(8, random.Random(1))
    assert re.fullmatch("[bcdfghjklmnpqrstvwxz2456789]{12}", generate_name_suffix(12))


def test_dns1123_label() -> None:
    assert validate_dns1123_label("my-name") == []
    assert validate_dns1123_label("123-abc") == []
    assert validate_dns1123_label("a" * 63) == []
    assert validate_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    errs = validate_dns1123_label("My_Name")
    assert errs == [
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
        "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    ]
    assert validate_dns1123_label("a.b")
    assert validate_dns1123_label("-a")
    assert validate_dns1123_label("")


def test_dns1123_subdomain() -> None:
    assert validate_dns1123_subdomain("example.com") == []
    assert validate_dns1123_subdomain("pod-1.ns") == []
    assert validate_dns1123_subdomain("a" * 254)[0] == "must be no more than 253 characters"
    errs = validate_dns1123_subdomain("Example.com")
    assert len(errs) == 1 and errs[0].startswith("a lowercase RFC 1123 subdomain must consist of")
    assert "(e.g. 'example.com', regex used for validation is" in errs[0]
    assert validate_dns1123_subdomain("a..b")


def test_qualified_name() -> None:
    assert validate_qualified_name("app") == []
    assert validate_qualified_name("kubernetes.io/hostname") == []
    assert validate_qualified_name("My.Name_1") == []
    assert validate_qualified_name("/a") == ["prefix part must be non-empty"]
    assert validate_qualified_name("a/")[0] == "name part must be non-empty"
    assert validate_qualified_name("x" * 64)[0] == "name part must be no more than 63 characters"
    assert validate_qualified_name("Bad.Prefix/a")[0].startswith("prefix part a lowercase RFC 1123 subdomain")
    assert validate_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert validate_qualified_name("-a")[0].startswith("name part must consist of alphanumeric characters")


def test_label_value() -> None:
    assert validate_label_value("") == []
    assert validate_label_value("MyValue") == []
    assert validate_label_value("my_value.1-2") == []
    assert validate_label_value("v" * 64)[0] == "must be no more than 63 characters"
    errs = validate_label_value("bad value")
    assert errs and errs[0].startswith("a valid label must be an empty string or consist of")
    assert validate_label_value("-x")
