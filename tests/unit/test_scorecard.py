"""The scorecard as data: every kind of bin, missing values, grade cut-off boundaries, and
a definition refused with every problem named."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from core.errors import ValidationFailed
from plugins.origination import scorecard as sc

CARD: dict[str, Any] = {
    "code": "retail", "base_points": 500,
    "variables": [
        {"variable": "bureau_score", "bins": [
            {"max": 550, "points": -60}, {"min": 550, "max": 650, "points": 0},
            {"min": 650, "points": 40}, {"missing": True, "points": -20}]},
        {"variable": "industry", "bins": [
            {"values": ["coal", "construction"], "points": -15}, {"values": ["technology"],
                                                                  "points": 10},
            {"other": True, "points": 5}]},
        {"variable": "debt_to_income", "bins": [{"max": "0.5", "points": 20},
                                                {"min": "0.5", "max": "2", "points": 0}]},
    ],
    "grades": [{"grade": "A", "min": 560}, {"grade": "B", "min": 520}, {"grade": "C"}],
}


def points(result: sc.Result) -> dict[str, tuple[Any, str, int]]:
    return {b["variable"]: (b["value"], b["bin"], b["points"]) for b in result.breakdown}


def test_numeric_bins_take_min_inclusive_and_max_exclusive() -> None:
    card = sc.validate(CARD)
    assert points(sc.score(card, {"bureau_score": 549}))["bureau_score"] == (549, "< 550", -60)
    assert points(sc.score(card, {"bureau_score": 550}))["bureau_score"][2] == 0
    assert points(sc.score(card, {"bureau_score": "649.99"}))["bureau_score"][2] == 0
    assert points(sc.score(card, {"bureau_score": 650}))["bureau_score"] == (650, ">= 650", 40)
    dti = points(sc.score(card, {"debt_to_income": Decimal("0.5")}))["debt_to_income"]
    assert dti == ("0.5", "[0.5, 2)", 0)


def test_category_bins_other_and_missing() -> None:
    card = sc.validate(CARD)
    assert points(sc.score(card, {"industry": "coal"}))["industry"] == (
        "coal", "coal, construction", -15)
    assert points(sc.score(card, {"industry": "technology"}))["industry"][2] == 10
    assert points(sc.score(card, {"industry": "catering"}))["industry"] == (
        "catering", "other", 5)
    missing = points(sc.score(card, {}))
    assert missing["bureau_score"] == (None, "missing", -20)
    assert missing["industry"] == (None, "none", 0)  # no missing bin: no points
    assert missing["debt_to_income"] == (None, "none", 0)
    # a value past every numeric bin and no `other` bin scores nothing
    assert points(sc.score(card, {"debt_to_income": 5}))["debt_to_income"] == (5, "none", 0)
    assert points(sc.score(card, {"bureau_score": "n/a"}))["bureau_score"][1] == "missing"


def test_the_score_is_base_plus_points_and_the_grade_follows_the_cut_offs() -> None:
    card = sc.validate(CARD)
    result = sc.score(card, {"bureau_score": 700, "industry": "technology",
                             "debt_to_income": "0.2"})
    assert (result.score, result.grade) == (500 + 40 + 10 + 20, "A")
    assert [sc.grade_for(card, s) for s in (560, 559, 520, 519, -1000)] == [
        "A", "B", "B", "C", "C"]
    closed = sc.validate({**CARD, "grades": [{"grade": "A", "min": 600},
                                             {"grade": "B", "min": 500}]})
    assert sc.grade_for(closed, 499) == "B"  # below every cut-off: the lowest grade


def errors(definition: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as info:
        sc.validate(definition)
    return [(e.field, e.code) for e in info.value.errors]


def test_bad_definitions_are_refused_naming_the_place() -> None:
    bins = CARD["variables"][0]["bins"]
    overlap = {**CARD, "variables": [{"variable": "bureau_score", "bins": [
        {"max": 600, "points": 1}, {"min": 550, "points": 2}]}]}
    assert errors(overlap) == [("variables[0].bins[1]", "sc_bins_overlap")]
    unsorted = {**CARD, "variables": [{"variable": "bureau_score", "bins": [
        {"min": 600, "max": 700, "points": 1}, {"min": 500, "max": 600, "points": 2}]}]}
    assert errors(unsorted) == [("variables[0].bins[1]", "sc_bins_unsorted")]
    open_middle = {**CARD, "variables": [{"variable": "amount", "bins": [
        {"min": 1, "points": 1}, {"min": 5, "max": 9, "points": 2}]}]}
    assert errors(open_middle) == [("variables[0].bins[0]", "sc_bin_open_middle")]
    unknown = {**CARD, "variables": [{"variable": "shoe_size", "bins": bins}]}
    assert errors(unknown) == [("variables[0].variable", "sc_unknown_variable")]
    wrong = {**CARD, "variables": [{"variable": "industry", "bins": [{"min": 1, "points": 1}]}]}
    assert errors(wrong) == [("variables[0].bins[0]", "sc_bin_not_numeric")]
    twice = {**CARD, "variables": [CARD["variables"][1], CARD["variables"][1]]}
    assert errors(twice) == [("variables[1].variable", "sc_variable_twice")]
    dup = {**CARD, "variables": [{"variable": "industry", "bins": [
        {"values": ["coal"], "points": 1}, {"values": ["coal"], "points": 2}]}]}
    assert errors(dup) == [("variables[0].bins[1]", "sc_category_twice")]
    grades = {**CARD, "grades": [{"grade": "A", "min": 500}, {"grade": "B", "min": 600}]}
    assert errors(grades) == [("grades[1].min", "sc_grades_unsorted")]
    assert errors({**CARD, "grades": [{"grade": "A"}, {"grade": "B", "min": 1}]}) == [
        ("grades[0]", "sc_grade_open_middle")]
    assert errors({**CARD, "base_points": "1.5"}) == [("base_points", "sc_not_integer")]
    assert errors({**CARD, "code": "bad code!"}) == [("code", "sc_code_invalid")]


def test_messages_name_the_problem_in_both_languages() -> None:
    with pytest.raises(ValidationFailed) as info:
        sc.validate({**CARD, "variables": [{"variable": "shoe_size", "bins": []}]})
    err = info.value.errors[0]
    assert "未知变量 shoe_size" in err.message("zh-CN")
    assert "unknown variable shoe_size" in err.message("en")


def test_a_definition_survives_its_own_normalised_form() -> None:
    card = sc.validate(CARD)
    assert sc.validate(sc.as_data(card)) == card
