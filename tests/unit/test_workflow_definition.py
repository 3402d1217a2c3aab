"""Workflow definitions (plugins/origination/definition.py): each refusal with its step and
field in zh-CN and en, every problem reported at once, the round trip through data, and the
diagram (plugins/origination/diagram.py)."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from plugins.origination.conditions import APPLICATION_FIELDS
from plugins.origination.diagram import layout, render_svg
from plugins.origination.examples import DEMO_WORKFLOW
from plugins.origination.workflow import DefinitionError, parse_definition, to_data

CJK = re.compile(r"[\u4e00-\u9fff]")
DOCS = Path(__file__).resolve().parents[2] / "docs"


def demo(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(DEMO_WORKFLOW)
    data.update(changes)
    return data


def problems(data: Any, fields: dict[str, str] | None = None) -> list[tuple[str, Any, Any]]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(data, fields)
    err = info.value
    for p in err.problems:
        assert CJK.search(p.zh), p.zh
        assert not CJK.search(p.en), p.en
        if p.step:
            assert p.step in p.zh and p.step in p.en
        if p.field:
            assert p.field in p.zh and p.field in p.en
    assert err.zh and err.en and isinstance(err, ValueError)
    return [(p.code, p.step, p.field) for p in err.problems]


def step(sid: str, **kw: Any) -> dict[str, Any]:
    return {"id": sid, "assignees": {"roles": ["risk_reviewer"]}, **kw}


def flow(*steps: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"id": "wf", "version": 1, "steps": list(steps), **kw}


def test_the_demo_parses() -> None:
    d = parse_definition(DEMO_WORKFLOW)
    assert (d.id, d.version, d.name_zh, d.name_en) == ("loan_approval", 1, "贷款审批",
                                                       "Loan approval")
    assert [s.id for s in d.steps] == ["risk_review", "branch_review", "final_countersign"]
    assert d.step("final_countersign").mode == "all"
    assert d.fields == (("amount", "money"),) and d.distinct_approvers


def test_the_docs_show_the_demo_definition() -> None:
    for page in ("workflows.md", "workflows.zh-CN.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        block = re.search(r"```yaml\n(id: loan_approval.*?)```", text, re.S)
        assert block, page
        assert yaml.safe_load(block.group(1)) == DEMO_WORKFLOW, page


def test_round_trip_through_data_and_yaml() -> None:
    d = parse_definition(DEMO_WORKFLOW)
    assert parse_definition(to_data(d)) == d
    assert parse_definition(yaml.safe_load(yaml.safe_dump(to_data(d), allow_unicode=True))) == d


def test_defaults() -> None:
    d = parse_definition(flow(step("only")))
    s = d.steps[0]
    assert (s.mode, s.name_zh, [r.to for r in s.next]) == ("any", "only", ["approved"])
    assert [r.to for r in d.start] == ["only"] and d.name_en == "wf"


# -- each refusal -------------------------------------------------------------------------------

def test_unknown_step_reference() -> None:
    data = demo()
    data["steps"][0]["next"][1]["to"] = "branch_reveiw"
    assert problems(data) == [
        ("unknown_step", "risk_review", "next[1].to"),
        ("unreachable_step", "branch_review", None)]
    assert problems(demo(start="nowhere"))[0] == ("unknown_step", None, "start[0].to")


def test_unreachable_step() -> None:
    data = demo()
    data["steps"].append(step("orphan"))
    assert problems(data) == [("unreachable_step", "orphan", None)]


@pytest.mark.parametrize(("steps", "cycle"), [
    ((step("a", next="b"), step("b", next="a")), "a → b → a"),
    ((step("a", next="b"), step("b", next="c"), step("c", next="b")), "b → c → b"),
    ((step("a", next="a"),), "a → a"),
])
def test_cycles(steps: tuple[dict[str, Any], ...], cycle: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(flow(*steps))
    p = next(p for p in info.value.problems if p.code == "cycle")
    assert cycle in p.zh and cycle in p.en and "退回" in p.zh and p.field == "next"


def test_condition_on_an_unknown_field() -> None:
    data = demo()
    data["steps"][0]["next"][0]["when"] = {"field": "amont", "op": "lt", "value": "100000"}
    assert problems(data) == [("unknown_field", "risk_review", "next[0].when.field")]
    # custom fields are known once passed in
    data["steps"][0]["next"][0]["when"] = {"field": "industry", "op": "eq", "value": "coal"}
    assert problems(data) == [("unknown_field", "risk_review", "next[0].when.field")]
    d = parse_definition(data, {**APPLICATION_FIELDS, "industry": "single_select"})
    assert dict(d.fields) == {"industry": "single_select", "amount": "money"}


def test_bad_operators_and_values() -> None:
    data = demo()
    data["steps"][0]["next"][0]["when"]["op"] = "<"
    data["steps"][0]["next"][1]["when"]["value"] = ["500000", "100000"]
    assert problems(data) == [("bad_operator", "risk_review", "next[0].when.op"),
                              ("bad_value", "risk_review", "next[1].when.value")]
    data = demo()
    data["steps"][0]["next"][0]["when"] = {"field": "product", "op": "gt", "value": "A"}
    assert problems(data) == [("operator_not_for_type", "risk_review", "next[0].when.op")]


def test_empty_assignees_and_countersign_without_assignees() -> None:
    assert problems(flow({"id": "a", "assignees": {"roles": [], "users": []}})) == [
        ("no_assignees", "a", "assignees")]
    assert problems(flow({"id": "a"})) == [("no_assignees", "a", "assignees")]
    assert problems(flow({"id": "a", "mode": "all", "assignees": {}})) == [
        ("countersign_no_assignees", "a", "assignees")]
    assert problems(flow(step("a", assignees={"roles": ["x", "x"]}))) == [
        ("duplicate_assignee", "a", "assignees.roles")]
    assert problems(flow(step("a", assignees={"roles": "finance"}))) == [
        ("bad_assignee", "a", "assignees.roles"), ("no_assignees", "a", "assignees")]
    assert problems(flow(step("a", assignees=["finance"])))[0] == (
        "bad_assignee", "a", "assignees")


def test_duplicate_and_invalid_step_ids() -> None:
    assert problems(flow(step("a"), step("a"))) == [("duplicate_step", "a", "id")]
    assert problems(flow(step("approved"))) == [("bad_step_id", None, "steps[0].id")]
    assert problems(flow(step("Risk Review"))) == [("bad_step_id", None, "steps[0].id")]
    assert problems(flow("a")) == [("bad_step", None, "steps[0]")]


def test_bad_modes_routes_and_deadlines() -> None:
    assert problems(flow(step("a", mode="majority"))) == [("bad_mode", "a", "mode")]
    assert problems(flow(step("a", next=[{"when": {"field": "amount", "op": "lt",
                                                   "value": "1"}, "to": "approved"}]))) == [
        ("no_default_route", "a", "next")]
    assert problems(flow(step("a", next=[{"to": "approved"}, {"to": "rejected"}]))) == [
        ("route_after_default", "a", "next[1]")]
    assert problems(flow(step("a", next=[]))) == [("bad_routes", "a", "next")]
    assert problems(flow(step("a", next=[{"when": {"field": "amount", "op": "exists"}}]))) == [
        ("bad_routes", "a", "next[0]")]
    assert problems(flow(step("a", deadline_hours=0))) == [("bad_deadline", "a",
                                                            "deadline_hours")]
    assert problems(flow(step("a", deadline_hours="24"))) == [("bad_deadline", "a",
                                                               "deadline_hours")]
    assert problems(flow(step("a", deadline_hours=24, remind_before_hours=24))) == [
        ("bad_deadline", "a", "remind_before_hours")]
    assert problems(flow(step("a", escalate_to={"role": "gm"}))) == [
        ("bad_deadline", "a", "deadline_hours")]
    assert problems(flow(step("a", deadline_hours=4, escalate_to={"role": "gm",
                                                                  "user": "x"}))) == [
        ("bad_assignee", "a", "escalate_to")]


def test_bad_top_level() -> None:
    assert problems([]) == [("bad_definition", None, None)]
    assert problems(flow(step("a"), version=0)) == [("bad_version", None, "version")]
    assert problems(flow(step("a"), version=True)) == [("bad_version", None, "version")]
    assert problems(flow(step("a"), id="Loan Approval")) == [("bad_id", None, "id")]
    assert problems(flow()) == [("no_steps", None, "steps")]
    assert problems(flow(step("a"), colour="red")) == [("unknown_key", None, "colour")]
    assert problems(flow(step("a", deadline=4))) == [("unknown_key", "a", "deadline")]
    assert problems(flow(step("a"), distinct_approvers="yes")) == [
        ("bad_option", None, "distinct_approvers")]
    assert problems(flow(step("a", name={"zh-CN": ""}))) == [("bad_name", "a", "name")]


def test_every_problem_is_reported_at_once() -> None:
    data = demo(version="2")
    data["steps"][1]["mode"] = "both"
    data["steps"][2]["assignees"] = {"roles": []}
    data["steps"][2]["mode"] = "all"
    data["steps"][0]["next"][0]["when"]["field"] = "amt"
    found = problems(data)
    assert found == [
        ("bad_version", None, "version"),
        ("unknown_field", "risk_review", "next[0].when.field"),
        ("bad_mode", "branch_review", "mode"),
        ("countersign_no_assignees", "final_countersign", "assignees")]
    with pytest.raises(DefinitionError) as info:
        parse_definition(data)
    assert info.value.codes()[0] == "bad_version" and info.value.field == "version"
    assert info.value.problems[2].as_dict() == {
        "code": "bad_mode", "step": "branch_review", "field": "mode",
        "message_zh": "步骤“branch_review”的 mode：未知的审批方式“both”（any 或签 / all 会签）",
        "message_en": "step 'branch_review', mode: unknown mode 'both' (any or all)"}


# -- the diagram ---------------------------------------------------------------------------------

def test_layout_of_the_demo() -> None:
    g = layout(parse_definition(DEMO_WORKFLOW), "en")
    assert {n["id"]: n["kind"] for n in g["nodes"]} == {
        "start": "start", "risk_review": "step", "branch_review": "step",
        "final_countersign": "step", "approved": "approved"}
    edges = {(e["from"], e["to"]): e["label"] for e in g["edges"]}
    assert edges == {
        ("start", "risk_review"): "",
        ("risk_review", "approved"): "amount < 100,000",
        ("risk_review", "branch_review"): "100,000 ≤ amount ≤ 500,000",
        ("risk_review", "final_countersign"): "otherwise",
        ("branch_review", "approved"): "",
        ("final_countersign", "approved"): ""}
    nodes = {n["id"]: n for n in g["nodes"]}
    ys = {k: n["y"] for k, n in nodes.items()}
    assert ys["start"] < ys["risk_review"] < ys["branch_review"] == ys["final_countersign"] \
        < ys["approved"]
    # the edge that skips a row bends beside the boxes instead of crossing them
    skip = next(e for e in g["edges"] if e["to"] == "approved" and e["from"] == "risk_review")
    assert len(skip["points"]) == 4
    right = max(nodes[k]["x"] + nodes[k]["w"] for k in ("branch_review", "final_countersign"))
    assert skip["points"][1][0] > right
    for n in g["nodes"]:
        assert 0 <= n["x"] and n["x"] + n["w"] <= g["width"]
        assert 0 <= n["y"] and n["y"] + n["h"] <= g["height"]
    assert nodes["final_countersign"]["lines"][1] == \
        "countersign · role finance, role general_manager"


def test_svg_is_self_contained_and_readable_in_both_languages() -> None:
    d = parse_definition(DEMO_WORKFLOW)
    zh = render_svg(d, "zh-CN", {"amount": {"zh-CN": "金额", "en": "Amount"}})
    root = ET.fromstring(zh)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for word in ("风险审查", "部门经理审批", "财务与总经理会签", "会签", "或签", "通过", "提交",
                 "金额 < 100,000", "否则", "时限 24h"):
        assert word in texts, word
    assert "<script" not in zh and "href" not in zh and zh.count("http") == 1
    en = render_svg(d, "en")
    assert "Risk review" in en and "Approved" in en and "otherwise" in en
    assert len(ET.fromstring(en).findall("{http://www.w3.org/2000/svg}polyline")) == 6


def test_svg_escapes_names_and_draws_rejected_ends() -> None:
    d = parse_definition(flow(
        step("screen", name={"zh-CN": "初审 <A&B>", "en": "Screen \"A\""},
             next=[{"when": {"field": "grade", "op": "in", "value": ["E"]}, "to": "rejected"},
                   {"to": "approved"}]),
        start=[{"when": {"field": "amount", "op": "lt", "value": "1000"}, "to": "approved"},
               {"to": "screen"}]))
    svg = render_svg(d)
    ET.fromstring(svg)  # well-formed despite <, & and quotes in names
    assert "初审 &lt;A&amp;B&gt;" in svg and "拒绝" in svg
    kinds = {n["kind"] for n in layout(d)["nodes"]}
    assert kinds == {"start", "step", "approved", "rejected"}
