"""The application entity (进件): one declaration gives the list API, the detail API,
documents, custom fields and object rules (an officer sees own applications, a branch
manager the branch's).

`generic_writes=False`: the generic create/update/delete routes are not mounted, because an
application must pass more than the registry can check (the product's ranges through the
`loan_products` provider, the blacklist through `party_screen`, the status machine).
plugins.origination.applications checks those and then writes through core.records.
"""

from __future__ import annotations

from decimal import Decimal

from core.fields import Choice, FieldDef, FieldType, Sensitivity
from core.registry import EntityType
from plugins.origination.tables import Application

STATUSES = (
    Choice("draft", "草稿", "Draft"),
    Choice("submitted", "已提交", "Submitted"),
    Choice("in_approval", "审批中", "In approval"),
    Choice("returned", "已退回", "Returned"),
    Choice("approved", "已批准", "Approved"),
    Choice("rejected", "已拒绝", "Rejected"),
    Choice("withdrawn", "已撤回", "Withdrawn"),
    Choice("ready_to_disburse", "待放款", "Ready to disburse"),
    Choice("disbursed", "已放款", "Disbursed"),
)

APPLICATION = EntityType(
    name="application",
    table=Application,
    label_zh="进件",
    label_en="Application",
    api_path="applications",
    title_field="number",
    generic_writes=False,
    fields=(
        FieldDef("number", FieldType.text, "进件编号", "Application number", max_length=30,
                 searchable=True, sortable=True),
        FieldDef("customer_id", FieldType.reference, "客户", "Customer", required=True,
                 reference="customer"),
        FieldDef("product", FieldType.text, "贷款产品", "Loan product", required=True,
                 max_length=40, sortable=True),
        FieldDef("amount", FieldType.money, "申请金额（元）", "Amount (CNY)", required=True,
                 min_value=Decimal("0.01"), sortable=True),
        FieldDef("periods", FieldType.integer, "期数", "Periods", required=True,
                 min_value=Decimal("1"), max_value=Decimal("600")),
        FieldDef("annual_rate", FieldType.decimal, "利率", "Interest rate"),
        FieldDef("purpose", FieldType.text, "借款用途", "Purpose", max_length=200),
        FieldDef("region", FieldType.region, "所在地区", "Region", sortable=True),
        FieldDef("consent_ref", FieldType.text, "征信授权书编号", "Credit consent reference",
                 sensitivity=Sensitivity.personal, max_length=64),
        FieldDef("status", FieldType.single_select, "状态", "Status", options=STATUSES,
                 sortable=True),
        FieldDef("grade", FieldType.text, "评级", "Grade", max_length=8, sortable=True),
        FieldDef("score", FieldType.integer, "评分", "Score", sortable=True),
        FieldDef("credit_report", FieldType.text, "征信查询编号", "Credit check", max_length=64),
        FieldDef("submitted_by", FieldType.text, "提交人", "Submitted by", max_length=64),
        FieldDef("submitted_at", FieldType.datetime, "提交时间", "Submitted at"),
        FieldDef("decided_by", FieldType.text, "审批人", "Decided by", max_length=64),
    ),
)
# What a user may give when creating or editing a draft; the rest is set by the service.
INPUT_FIELDS = ("customer_id", "product", "amount", "periods", "annual_rate", "purpose",
                "consent_ref")
