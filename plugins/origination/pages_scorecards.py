"""The scorecard editor (评分卡) for risk staff (`scorecard.manage`):

    GET  /scorecards                 the scorecards (newest versions), one open in the editor
    POST /scorecards                 save the edited definition as a new version
    POST /scorecards/preview         htmx "try it": score a sample with the edited definition

The definition is edited as YAML, the same text as the pack's `scorecards:` entries, and
checked by plugins.origination.scorecard.validate: an overlapping or unsorted bin or an
unknown variable is refused with its place named, nothing saved.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from litestar import Request, Response, get, post
from litestar.response import Redirect

from core.errors import FieldError, ValidationFailed
from core.tenancy import Context
from core.web.context import CurrentContext
from core.web.ui.i18n import gettext_for
from core.web.ui.render import local_time, render
from plugins.origination import scorecard as sc
from plugins.origination import scorecards

UI = {"include_in_schema": False}
MANAGE = {"permission": "scorecard.manage"}
MAX_TEXT = 50_000
NEW = """code: retail
name: {zh-CN: 个人贷款评分卡, en: Retail scorecard}
products: []
base_points: 600
variables:
  - variable: bureau_score
    bins:
      - {max: 600, points: -50}
      - {min: 600, max: 750, points: 0}
      - {min: 750, points: 40}
      - {missing: true, points: -30}
grades:
  - {grade: A, min: 640}
  - {grade: B, min: 600}
  - {grade: C}
"""
SAMPLE = "bureau_score: 700\namount: 100000\nindustry: wholesale_retail\n"


def _dump(definition: Any) -> str:
    plain = json.loads(json.dumps(definition))  # the JSON column's own mapping type
    return yaml.safe_dump(plain, allow_unicode=True, sort_keys=False)


def _parse(text: str, what: str) -> Any:
    _ = text[:MAX_TEXT]
    try:
        return yaml.safe_load(_)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{what}:{mark.line + 1}" if mark else what
        raise ValidationFailed([FieldError(where, "sc_not_mapping", {},
                                           {"zh-CN": where, "en": where})]) from None


async def _page(request: Request[Any, Any, Any], ctx: Context, text: str, sample: str,
                errors: list[str] | None = None, status: int = 200, saved: str = ""
                ) -> Response[Any]:
    cards = await scorecards.latest(ctx)
    tz = ctx.tenant.timezone
    rows = [{"code": c["code"], "version": c["version"],
             "name": (c["definition"].get("name") or {}).get(ctx.locale, c["code"]),
             "created": local_time(c["created_at"], tz)} for c in cards]
    variables = [(k, v[0], v[2] if ctx.locale == "en" else v[1])
                 for k, v in sc.VARIABLES.items()]
    return render(request, "origination/scorecards.html", status=status, cards=rows,
                  text=text, sample=sample, errors=errors or [], saved=saved,
                  variables=variables, preview=None)


@get("/scorecards", opt=MANAGE, **UI)
async def scorecards_page(request: Request[Any, Any, Any], ctx: CurrentContext
                          ) -> Response[Any]:
    code = (request.query_params.get("code") or "")[:40]
    cards = await scorecards.latest(ctx)
    chosen = next((c for c in cards if c["code"] == code), cards[0] if cards and not
                  request.query_params.get("new") else None)
    text = _dump(chosen["definition"]) if chosen else NEW
    saved = (request.query_params.get("saved") or "")[:50]
    return await _page(request, ctx, text, SAMPLE, saved=saved)


@post("/scorecards", opt=MANAGE, status_code=303, **UI)
async def scorecards_save(request: Request[Any, Any, Any], ctx: CurrentContext
                          ) -> Response[Any]:
    form = await request.form()
    text, sample = str(form.get("definition") or ""), str(form.get("sample") or SAMPLE)
    try:
        saved = await scorecards.save(ctx, _parse(text, "definition"))
    except ValidationFailed as exc:
        return await _page(request, ctx, text, sample,
                           [e.message(ctx.locale) for e in exc.errors], status=422)
    return Redirect(f"/scorecards?code={saved['code']}&saved={saved['version']}",
                    status_code=303)


@post("/scorecards/preview", opt=MANAGE, status_code=200, **UI)
async def scorecards_preview(request: Request[Any, Any, Any], ctx: CurrentContext
                             ) -> Response[Any]:
    """Score the sample with the edited (unsaved) definition; errors by place otherwise."""
    form = await request.form()
    _ = gettext_for(ctx.locale)
    try:
        card = sc.validate(_parse(str(form.get("definition") or ""), "definition"))
        sample = _parse(str(form.get("sample") or ""), "sample") or {}
        if not isinstance(sample, dict):
            raise ValidationFailed([FieldError("sample", "sc_not_mapping", {},
                                               {"zh-CN": "sample", "en": "sample"})])
        result = sc.score(card, sample)
    except ValidationFailed as exc:
        return render(request, "origination/_scorecard_preview.html", status=422,
                      errors=[e.message(ctx.locale) for e in exc.errors], preview=None)
    rows = [{**b, "label": sc.VARIABLES[b["variable"]][2 if ctx.locale == "en" else 1],
             "bin_text": {"missing": _("missing"), "other": _("any other value"),
                          "none": _("no bin")}.get(b["bin"], b["bin"])}
            for b in result.breakdown]
    return render(request, "origination/_scorecard_preview.html", errors=[],
                  preview={"score": result.score, "grade": result.grade, "rows": rows,
                           "base": card.base_points})


SCORECARD_PAGES = [scorecards_page, scorecards_save, scorecards_preview]
