"""Policy text: canonical forms, key attributes, and errors that point at the right column."""

from __future__ import annotations

import unicodedata

import pytest

from abe_health.errors import InvalidKey, PolicySyntaxError
from abe_health.policy import (
    And,
    Attribute,
    Comparison,
    Or,
    Policy,
    Threshold,
    parse,
    parse_attribute,
    parse_attributes,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("doctor", "doctor"),
        ("(doctor AND cardiology) Or (nurse and ward = 3)",
         "(doctor and cardiology) or (nurse and ward = 3)"),
        ("a and b or c", "(a and b) or c"),
        ("a or b and c", "a or (b and c)"),
        ("a and (b and (c and d))", "a and b and c and d"),
        ("((a))", "a"),
        ("2 OF (a, b and c, d)", "2 of (a, b and c, d)"),
        ("doctor@hospitalA and researcher@university", "doctor@hospitalA and researcher@university"),
        ("ward=03@H", "ward = 3@H"),
        ("age>=18", "age >= 18"),
        ("valid_until >= 2026-11-22", "valid_until >= 2026-11-22"),
        ("level == 7@ER", "level == 7@ER"),
        ('"x ray" and "and" and "3d"', '"x ray" and "and" and "3d"'),
        ('"plain"', "plain"),
        ('role = "head nurse"', 'role = "head nurse"'),
        ('q = "say \\"hi\\""', 'q = "say \\"hi\\""'),
        ("ärztin and x-ray.v2/a", "ärztin and x-ray.v2/a"),
        ("ward in 3..5@H", "ward in 3..5@H"),
        ("ward IN 03 .. 5@H", "ward in 3..5@H"),
        ("ward in 3.. 5 and ward in 7 ..9", "ward in 3..5 and ward in 7..9"),
        ("day in 2026-06-01..2026-06-30@ER", "day in 2026-06-01..2026-06-30@ER"),
        ("in in 1..1 or in", "in in 1..1 or in"),
        ('"x ray" in 0..4294967295', '"x ray" in 0..4294967295'),
    ],
)
def test_canonical_form(text, canonical):
    policy = Policy.parse(text)
    assert str(policy) == canonical
    assert str(Policy.parse(canonical)) == canonical
    assert Policy.parse(canonical) == policy


def test_tree_shapes():
    assert parse("a and b or c") == Or((And((Attribute("a"), Attribute("b"))), Attribute("c")))
    assert parse("2 of (a, b, c)") == Threshold(2, (Attribute("a"), Attribute("b"), Attribute("c")))
    assert parse("n = v@A") == Attribute("n", "v", "A")
    cmp = parse("d < 1970-01-11")
    assert cmp == Comparison("d", "<", 10, True, None, 32)
    assert parse("age > 3", widths={"age": 8}) == Comparison("age", ">", 3, False, None, 8)
    assert parse("ward in 3..5@H") == Comparison("ward", "in", 3, False, "H", 32, 5)
    assert parse("d in 1970-01-02..1970-01-11", {"d": 8}) == Comparison("d", "in", 1, True, None, 8, 10)


def test_ranges_are_inclusive_and_one_node():
    policy = Policy.parse("ward in 3..5")
    assert str(policy) == "ward in 3..5" and isinstance(policy.tree, Comparison)
    for value, inside in ((2, False), (3, True), (5, True), (6, False)):
        key = parse_attributes([f"ward = {value}"])
        assert policy.is_satisfied_by(key) is inside
        assert policy.lsss.satisfied_by(key.labels) is inside


def test_names_are_case_sensitive_and_nfc_normalized():
    assert parse("Doctor") != parse("doctor")
    decomposed = unicodedata.normalize("NFD", "ärztin")
    assert decomposed != "ärztin"
    assert parse(decomposed) == parse("ärztin")
    assert parse_attribute(decomposed).label == "ärztin"


def test_labels_are_fixed_format():
    """Labels are hashed into keys and ciphertexts: their format must never change."""
    assert parse_attribute("doctor").label == "doctor"
    assert parse_attribute("ward = 3").label == "ward=3"
    assert parse_attribute("doctor@hospitalA").label == "doctor@hospitalA"
    assert parse_attribute("role = 'x'".replace("'", '"') + "@A").label == "role=x@A"
    assert parse_attribute('role = "head nurse" @ "St Mary"').label == 'role="head nurse"@"St Mary"'
    assert parse_attribute('"3d"').label == '"3d"'


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("(a and b", 9, "expected ')' to close '(' at column 1"),
        ("a and b)", 8, "unbalanced ')'"),
        ("((a)", 5, "expected ')'"),
        ("3 of (a, b)", 1, "threshold 3 of 2"),
        ("0 of (a, b)", 1, "between 1 and 2"),
        ("2 of (a)", 6, "at least two sub-policies"),
        ("2 of a, b", 6, "expected '(' after 'of'"),
        ("2 (a, b)", 3, "expected 'of'"),
        ('"" and b', 1, "empty attribute name"),
        ("a and \"\"", 7, "empty attribute name"),
        ("not a", 1, "monotone"),
        ("a and NOT b", 7, "monotone"),
        ("a and !b", 7, "monotone"),
        ("a and", 6, "got end of policy"),
        ("a or", 5, "got end of policy"),
        ("a and or b", 7, "got 'or'"),
        ("and a", 1, "got 'and'"),
        ("", 1, "empty policy"),
        ("   ", 1, "empty policy"),
        ("a b", 3, "expected 'and', 'or' or end of policy"),
        ("valid_until >= 2026-02-30", 16, "unknown date '2026-02-30'"),
        ("valid_until >= 2026-13-01", 16, "unknown date"),
        ("born >= 1969-12-31", 9, "before 1970-01-01"),
        ("age >= old", 8, "expected a number or a date"),
        ("age >= 4294967296", 8, "does not fit in 32 bits"),
        ("age < 0", 5, "can never be satisfied"),
        ("age > 4294967295", 5, "can never be satisfied"),
        ("a = ", 5, "expected a value after '='"),
        ("a@", 3, "expected an authority name"),
        ("a && b", 3, "write 'and'"),
        ("a || b", 3, "write 'or'"),
        ("a and 'b'", 7, "unexpected character"),
        ('a and "b', 7, "unterminated quoted string"),
        ("2026-01-01", 1, "expected an attribute name"),
        ("12 and a", 4, "expected 'of'"),
        ('"age#3" = 1', 1, "may not contain '#'"),
        ("a, b", 2, "expected 'and', 'or' or end of policy, got ','"),
        ("age#3 = 1", 4, "reserved for internal names"),
        ("1499 of (a, b)", 1, "MAX_GATE_CHILDREN = 512"),
        ("a and age >= " + "9" * 41, 14, "MAX_NUMBER_DIGITS = 40"),
        ("a or ward = 0" + "0" * 40, 13, "MAX_NUMBER_DIGITS = 40"),
        ("30 of (" + ", ".join("x" * 40) + ")", 1, "MAX_THRESHOLD_ENTRY_BITS = 128"),
        ("ward in 5..3", 9, "range '5..3' is empty"),
        ("ward in 3..2026-01-01", 9, "mixes a number and a date"),
        ("ward in", 8, "expected a range LO..HI"),
        ("ward in 3 and x", 9, "expected a range LO..HI"),
        ("ward in (1, 2)", 9, "expected a range LO..HI"),
        ("ward in x..y", 9, "got 'x..y'"),
        ("ward in 1..2..3", 9, "got '1..2..3'"),
        ("ward in 3..4294967296", 12, "does not fit in 32 bits"),
        ("day in 2026-02-30..2026-03-01", 8, "unknown date '2026-02-30'"),
        ("a and ward in 1.." + "9" * 41, 18, "MAX_NUMBER_DIGITS = 40"),
    ],
)
def test_syntax_errors_name_the_column(text, column, fragment):
    with pytest.raises(PolicySyntaxError) as info:
        Policy.parse(text)
    err = info.value
    assert err.column == column, str(err)
    assert fragment in str(err)
    assert f"column {column}" in str(err)
    assert isinstance(err, ValueError)


def test_deep_nesting_is_refused_not_a_recursion_error():
    with pytest.raises(PolicySyntaxError, match="nests more than"):
        Policy.parse("(" * 200 + "a" + ")" * 200)


def test_non_text_policy():
    with pytest.raises(PolicySyntaxError):
        Policy.parse(b"doctor")  # type: ignore[arg-type]


def test_key_attributes():
    key = parse_attributes(["doctor", "age = 42", "doctor", "valid_until = 2026-12-31@ER"])
    assert [str(a) for a in key.attributes] == ["doctor", "age = 42", "valid_until = 2026-12-31@ER"]
    assert key.numbers == {"age": 42, "valid_until@ER": 20818}
    assert {"age=42", "age#p0=42", "age#p1=21", "age#p5=1", "age#p6=0", "age#p32=0"} <= key.labels
    assert "valid_until#p0=20818@ER" in key.labels and "valid_until#p32=0@ER" in key.labels
    # 3 literal labels + 33 prefix labels (levels 0..32) for each of the two numeric attributes
    assert len(key.labels) == 3 + 2 * 33


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("age >= 3", "not a comparison"),
        ("ward in 3..5", "not a comparison"),
        ("a and b", "expected end of attribute"),
        ("", "expected an attribute name"),
        ("valid_until = 2026-02-29", "unknown date"),
        ("or", "expected an attribute name"),
    ],
)
def test_bad_key_attributes(text, fragment):
    with pytest.raises(PolicySyntaxError, match=fragment):
        parse_attribute(text)


def test_key_refuses_two_values_of_one_numeric_attribute():
    with pytest.raises(InvalidKey, match="one value"):
        parse_attributes(["age = 42", "age = 43"])
    # different authorities are different attributes
    assert parse_attributes(["age = 42@A", "age = 43@B"]).numbers == {"age@A": 42, "age@B": 43}


def test_key_value_must_fit_width():
    with pytest.raises(InvalidKey, match="does not fit in 4 bits"):
        parse_attributes(["age = 16"], widths={"age": 4})


def test_policy_attributes_and_authorities():
    policy = Policy.parse("doctor@A and (researcher@B or 2 of (x, y, level >= 2@C))",
                          widths={"level": 4})
    assert policy.authorities == {"A", "B", "C"}
    assert "doctor@A" in policy.attributes
    assert any(label.startswith("level#") and label.endswith("@C") for label in policy.attributes)
