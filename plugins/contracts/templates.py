"""Contract templates: Jinja2 text in zh-CN, checked before it is saved, rendered sandboxed.

A lender's business staff edit contract wording per product without a developer, so the
template is untrusted text: it runs in Jinja2's `SandboxedEnvironment` (no attribute
starting with an underscore, bounded `range`), with `StrictUndefined` (a misspelt variable
is an error, never an empty gap in a signed contract) and no autoescape (the output is
plain text; `render.py` escapes it for the PDF).

`check_template` refuses a template before it is stored: a syntax error, a variable that is
not in `VARIABLES`, a schedule row field not in `ROW_FIELDS`, an underscore attribute, an
include/import, or a failure when rendered against synthetic sample data. Each refusal is a
`ValidationFailed` naming the variable and the line in zh-CN and en.

`contract_variables` turns a typed `ContractData` (Decimal money, dates) into the template's
strings, so every template prints money, rates and dates the same way, and identity numbers
and accounts are always masked whatever the caller passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from core.errors import FieldError, ValidationFailed
from core.i18n import register_messages
from core.validators import mask_generic, mask_resident_id
from plugins.contracts.numerals import amount_in_words

MAX_LENGTH = 100_000  # characters; a contract is a few thousand
SAMPLE_PATH = Path(__file__).parent / "templates" / "loan_contract.zh-CN.j2"

# name -> (zh-CN, en): what each variable holds. docs/contracts*.md lists the same.
VARIABLES: dict[str, tuple[str, str]] = {
    "lender_name": ("贷款人名称", "the lender's name"),
    "contract_number": ("合同编号", "the contract number"),
    "borrower_name": ("借款人姓名", "the borrower's name"),
    "borrower_id_masked": ("借款人身份证号（脱敏，如 110***********002X）",
                           "the borrower's resident ID, masked"),
    "product_name": ("贷款产品名称", "the product's name"),
    "amount": ("借款金额（小写，元，如 100,000.00）", "the amount in figures (yuan)"),
    "amount_in_words": ("借款金额（大写，如 壹拾万元整）", "the amount in Chinese capitals"),
    "annual_rate": ("年利率（%，如 7.20）", "the annual interest rate, percent"),
    "apr": ("年化利率（IRR，含费用，%；未知时为 —）", "the APR (IRR incl. fees), percent"),
    "periods": ("期数", "the number of installments"),
    "term": ("借款期限（如 12个月）", "the term in words"),
    "repayment_method": ("还款方式（如 等额本息）", "the repayment method"),
    "disbursed_on": ("放款日（如 2025年1月15日）", "the disbursement date"),
    "maturity_on": ("到期日", "the maturity date"),
    "repayment_account": ("还款账户（脱敏，保留后四位）", "the repayment account, masked"),
    "signed_on": ("签订日期", "the signing date"),
    "total_interest": ("按还款计划的利息合计（元）", "the schedule's total interest"),
    "total_repayment": ("按还款计划的应还合计（元）", "the schedule's total repayment"),
    "schedule": ("还款计划行列表（字段见 ROW_FIELDS）", "the schedule rows"),
}

# A schedule row's fields, in the order of `plugins.servicing.schedule.ROW_FIELDS`.
ROW_FIELDS: dict[str, tuple[str, str]] = {
    "n": ("期次", "installment number"),
    "due_on": ("应还日期（如 2025-02-15）", "due date"),
    "principal": ("本金（元）", "principal"),
    "interest": ("利息（元）", "interest"),
    "fees": ("费用（元）", "fees"),
    "total": ("合计（元）", "total"),
    "balance": ("剩余本金（元）", "principal balance after the installment"),
}

METHOD_LABELS: dict[str, str] = {
    "equal_installment": "等额本息",
    "equal_principal": "等额本金",
    "interest_only": "按期付息、到期还本",
    "bullet": "到期一次性还本付息",
    "flat": "等本等息",
}

register_messages({
    "contract_template_syntax": {
        "zh-CN": "合同模板第 {line} 行有语法错误：{error}",
        "en": "contract template syntax error on line {line}: {error}"},
    "contract_template_unknown_variable": {
        "zh-CN": "合同模板使用了未定义的变量“{name}”（第 {line} 行）；可用变量见合同模板文档",
        "en": "the contract template uses an unknown variable '{name}' (line {line}); "
              "the contract template documentation lists the variables"},
    "contract_template_unknown_row_field": {
        "zh-CN": "合同模板中还款计划行没有字段“{name}”（第 {line} 行）；可用字段：{fields}",
        "en": "a schedule row has no field '{name}' (line {line}); the fields are: {fields}"},
    "contract_template_unsafe": {
        "zh-CN": "合同模板不能使用“{name}”（第 {line} 行）",
        "en": "the contract template may not use '{name}' (line {line})"},
    "contract_template_too_long": {
        "zh-CN": "合同模板过长：{got} 个字符，上限 {limit}",
        "en": "the contract template is too long: {got} characters, at most {limit}"},
    "contract_template_render": {
        "zh-CN": "合同模板无法用示例数据生成：{error}",
        "en": "the contract template fails on sample data: {error}"},
})

LABELS = {"zh-CN": "合同模板", "en": "contract template"}


class TemplateRefused(ValidationFailed):
    """A contract template that may not be saved or rendered; nothing was written."""


def _refused(code: str, **params: Any) -> TemplateRefused:
    return TemplateRefused([FieldError("template", code, params, LABELS)])


MAX_REPEAT = 10_000  # items or characters a `*` may build
MAX_POWER = 64
MAX_BITS = 4096  # an integer a `*` or `**` may build
MAX_LOOP_DEPTH = 2


class ContractEnvironment(SandboxedEnvironment):
    """The sandbox, also bounding what a template can make the server compute: `*` and
    `**` are capped (`"x" * 10**9`, or squaring a number in a loop, would fill the
    memory), and the only global is `namespace` (no `range` or `lipsum`: loops run over
    the schedule's rows and strings only, at most `MAX_LOOP_DEPTH` deep, checked before
    saving)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER:
                raise SecurityError(f"exponent above {MAX_POWER}")
            if isinstance(left, int) and abs(left).bit_length() * abs(right) > MAX_BITS:
                raise SecurityError(f"a number above {MAX_BITS} bits")
            return left**right
        for seq, times in ((left, right), (right, left)):
            if (isinstance(seq, str | list | tuple) and isinstance(times, int)
                    and len(seq) * times > MAX_REPEAT):
                raise SecurityError(f"a repeated sequence above {MAX_REPEAT} items")
        if (isinstance(left, int) and isinstance(right, int)
                and abs(left).bit_length() + abs(right).bit_length() > MAX_BITS):
            raise SecurityError(f"a number above {MAX_BITS} bits")
        return left * right


ENV = ContractEnvironment(undefined=StrictUndefined, autoescape=False,
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
ENV.globals = {"namespace": ENV.globals["namespace"]}
ALLOWED_NAMES = frozenset(VARIABLES) | frozenset(ENV.globals)


# --- the data a contract is rendered from ---------------------------------------------------

@dataclass(frozen=True)
class ContractData:
    """A contract's facts, typed: money and rates are Decimal, dates are dates.

    `borrower_id` and `repayment_account` may be given in full or already masked; they are
    printed masked either way (masking is idempotent). `schedule` holds rows in
    `ROW_FIELDS` order (the servicing engine's `Schedule.rows`) or mappings with those keys.
    """

    lender_name: str
    contract_number: str
    borrower_name: str
    borrower_id: str
    product_name: str
    amount: Decimal
    annual_rate: Decimal
    apr: Decimal | None
    periods: int
    term: str
    method: str
    disbursed_on: date
    maturity_on: date
    repayment_account: str
    signed_on: date
    schedule: Sequence[Sequence[Any] | Mapping[str, Any]]


def _decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money is never a float")
    return Decimal(value)


def _places(d: Decimal) -> int:
    return max(0, -int(d.normalize().as_tuple().exponent))


def money(value: Decimal | int | str) -> str:
    """`Decimal("100000")` -> `100,000.00`: thousands separated, at least two decimals and
    never rounded (a product with four-digit amounts prints all four)."""
    d = _decimal(value)
    return f"{d:,.{max(2, _places(d))}f}"


def percent(value: Decimal | int | str) -> str:
    """A rate in percent with at least two decimals: 7.2 -> 7.20, 7.125 -> 7.125."""
    d = _decimal(value)
    return f"{d:.{max(2, _places(d))}f}"


def zh_date(day: date) -> str:
    """`date(2025, 1, 5)` -> `2025年1月5日`, as dates are written in a Chinese contract."""
    return f"{day.year}年{day.month}月{day.day}日"


def _typed_row(row: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    values = [row[k] for k in ROW_FIELDS] if isinstance(row, Mapping) else list(row)
    if len(values) != len(ROW_FIELDS):
        raise ValueError(f"a schedule row has {len(ROW_FIELDS)} fields, got {len(values)}")
    n, due_on, *amounts = values
    due = due_on if isinstance(due_on, date) else date.fromisoformat(str(due_on))
    return {"n": int(n), "due_on": due,
            **{k: _decimal(v) for k, v in zip(list(ROW_FIELDS)[2:], amounts, strict=True)}}


def typed_schedule(data: ContractData) -> list[dict[str, Any]]:
    """The schedule rows as dicts keyed by `ROW_FIELDS`: n int, due_on date, money Decimal."""
    return [_typed_row(r) for r in data.schedule]


def contract_variables(data: ContractData) -> dict[str, Any]:
    """The template's variables (all of `VARIABLES`, as printable strings) for `data`."""
    typed = typed_schedule(data)
    rows = [{k: (v.isoformat() if k == "due_on" else v if k == "n" else money(v))
             for k, v in r.items()} for r in typed]
    return {
        "lender_name": data.lender_name,
        "contract_number": data.contract_number,
        "borrower_name": data.borrower_name,
        "borrower_id_masked": mask_resident_id(data.borrower_id.strip()),
        "product_name": data.product_name,
        "amount": money(data.amount),
        "amount_in_words": amount_in_words(data.amount),
        "annual_rate": percent(data.annual_rate),
        "apr": percent(data.apr) if data.apr is not None else "—",
        "periods": data.periods,
        "term": data.term,
        "repayment_method": METHOD_LABELS.get(data.method, data.method),
        "disbursed_on": zh_date(data.disbursed_on),
        "maturity_on": zh_date(data.maturity_on),
        "repayment_account": mask_generic(data.repayment_account.replace(" ", "")),
        "signed_on": zh_date(data.signed_on),
        "total_interest": money(sum((r["interest"] for r in typed), Decimal(0))),
        "total_repayment": money(sum((r["total"] for r in typed), Decimal(0))),
        "schedule": rows,
    }


def sample_data() -> ContractData:
    """Synthetic contract facts (no real person): the trial render of `check_template`,
    the documentation's examples and the tests use them."""
    d = Decimal
    rows = [
        (1, date(2025, 2, 15), d("33165.19"), d("600.00"), d("0.00"), d("33765.19"),
         d("66834.81")),
        (2, date(2025, 3, 15), d("33364.18"), d("401.01"), d("0.00"), d("33765.19"),
         d("33470.63")),
        (3, date(2025, 4, 15), d("33470.63"), d("200.82"), d("0.00"), d("33671.45"),
         d("0.00")),
    ]
    return ContractData(
        lender_name="示例小额贷款有限公司", contract_number="HT-2025-000001",
        borrower_name="张三", borrower_id="11010519491231002X", product_name="个人经营贷",
        amount=d("100000.00"), annual_rate=d("7.2"), apr=d("7.21"), periods=3,
        term="3个月", method="equal_installment", disbursed_on=date(2025, 1, 15),
        maturity_on=date(2025, 4, 15), repayment_account="6222020200001234567",
        signed_on=date(2025, 1, 14), schedule=rows)


def sample_template() -> str:
    """The sample 借款合同 shipped with the plugin (synthetic wording)."""
    return SAMPLE_PATH.read_text(encoding="utf-8")


# --- checking -------------------------------------------------------------------------------

def _line(ast: nodes.Template, name: str) -> int:
    lines = [n.lineno for n in ast.find_all(nodes.Name) if n.name == name and n.ctx == "load"]
    return min(lines) if lines else 1


def _row_names(ast: nodes.Template) -> set[str]:
    """Loop variables bound to schedule rows (`{% for row in schedule %}`)."""
    found: set[str] = set()
    for loop in ast.find_all(nodes.For):
        if isinstance(loop.iter, nodes.Name) and loop.iter.name == "schedule":
            targets = [loop.target] if isinstance(loop.target, nodes.Name) else []
            found.update(t.name for t in targets)
    return found


def _is_row(node: nodes.Node, row_names: set[str]) -> bool:
    if isinstance(node, nodes.Name):
        return node.name in row_names
    # schedule[0] or schedule[-1]
    return (isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name)
            and node.node.name == "schedule")


def _attribute_errors(ast: nodes.Template) -> list[FieldError]:
    errors: list[FieldError] = []
    row_names = _row_names(ast)
    fields = ", ".join(ROW_FIELDS)
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            attr: Any = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            attr = node.arg.value
        else:
            continue
        if attr.startswith("_"):
            errors.append(FieldError("template", "contract_template_unsafe",
                                     {"name": attr, "line": node.lineno}, LABELS))
        elif _is_row(node.node, row_names) and attr not in ROW_FIELDS:
            errors.append(FieldError("template", "contract_template_unknown_row_field",
                                     {"name": attr, "line": node.lineno, "fields": fields},
                                     LABELS))
    for node in ast.find_all((nodes.Include, nodes.Extends, nodes.Import,
                              nodes.FromImport)):
        errors.append(FieldError("template", "contract_template_unsafe",
                                 {"name": type(node).__name__.lower(), "line": node.lineno},
                                 LABELS))
    for loop in _loops_too_deep(ast, 0):
        errors.append(FieldError("template", "contract_template_unsafe",
                                 {"name": f"for ({MAX_LOOP_DEPTH + 1}+)", "line": loop.lineno},
                                 LABELS))
    return errors


def _loops_too_deep(node: nodes.Node, depth: int) -> list[nodes.For]:
    """`for` loops nested deeper than MAX_LOOP_DEPTH (1200 rows cubed is 1.7e9 steps)."""
    found: list[nodes.For] = []
    for child in node.iter_child_nodes():
        inner = depth + isinstance(child, nodes.For)
        if isinstance(child, nodes.For) and inner > MAX_LOOP_DEPTH:
            found.append(child)
        else:
            found += _loops_too_deep(child, inner)
    return found


# What a template that parsed can still raise when run: an undefined name, a sandbox refusal,
# a type mismatch (`amount + 1`), an index out of range, a division by zero.
RENDER_ERRORS = (TemplateError, ArithmeticError, LookupError, TypeError, ValueError)


def check_template(text: str) -> None:
    """Refuse (`TemplateRefused`) a template that cannot be saved; return if it can."""
    if len(text) > MAX_LENGTH:
        raise _refused("contract_template_too_long", got=len(text), limit=MAX_LENGTH)
    try:  # finding the variables compiles the template: unknown filters and tests fail here
        ast = ENV.parse(text)
        unknown = sorted(find_undeclared_variables(ast) - ALLOWED_NAMES)
    except TemplateSyntaxError as e:
        raise _refused("contract_template_syntax", line=e.lineno, error=e.message) from None
    errors = [FieldError("template", "contract_template_unknown_variable",
                         {"name": name, "line": _line(ast, name)}, LABELS)
              for name in unknown]
    errors += _attribute_errors(ast)
    if errors:
        raise TemplateRefused(errors)
    try:  # the sample run finds the rest: a type error, a failing filter
        ENV.from_string(text).render(contract_variables(sample_data()))
    except RENDER_ERRORS as e:
        raise _refused("contract_template_render", error=str(e)[:200]) from None


def render_text(text: str, variables: Mapping[str, Any]) -> str:
    """The template filled in; a variable missing from `variables` is refused, not blank."""
    try:
        return ENV.from_string(text).render(dict(variables))
    except TemplateSyntaxError as e:
        raise _refused("contract_template_syntax", line=e.lineno, error=e.message) from None
    except RENDER_ERRORS as e:
        raise _refused("contract_template_render", error=str(e)[:200]) from None
