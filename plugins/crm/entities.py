"""The customer entity: one declaration drives validation, API, masking and encryption."""

from __future__ import annotations

from typing import Any

from core.errors import FieldError
from core.fields import Choice, FieldDef, FieldType, Sensitivity
from core.registry import EntityType
from plugins.crm.tables import Customer

INDUSTRIES = (
    Choice("agriculture", "农林牧渔", "Agriculture"),
    Choice("manufacturing", "制造业", "Manufacturing"),
    Choice("coal", "煤炭与采矿", "Coal and mining"),
    Choice("construction", "建筑业", "Construction"),
    Choice("wholesale_retail", "批发零售", "Wholesale and retail"),
    Choice("transport", "交通运输", "Transport"),
    Choice("catering", "住宿餐饮", "Hotels and catering"),
    Choice("services", "居民服务", "Personal services"),
    Choice("technology", "信息技术", "Information technology"),
    Choice("other", "其他", "Other"),
)


def _identity_required(record: dict[str, Any]) -> list[FieldError]:
    """An individual needs a resident ID; a company needs a credit code."""
    if record.get("kind") == "individual" and not record.get("resident_id"):
        return [FieldError("resident_id", "required")]
    if record.get("kind") == "company" and not record.get("credit_code"):
        return [FieldError("credit_code", "required")]
    return []


P, S = Sensitivity.personal, Sensitivity.secret
CUSTOMER = EntityType(
    name="customer",
    table=Customer,
    label_zh="客户",
    label_en="Customer",
    api_path="customers",
    fields=(
        FieldDef("kind", FieldType.single_select, "客户类型", "Customer type", required=True,
                 options=(Choice("individual", "个人", "Individual"),
                          Choice("company", "企业", "Company")), sortable=True),
        FieldDef("name", FieldType.text, "名称", "Name", required=True, sensitivity=P,
                 searchable=True, max_length=200, sortable=True),
        FieldDef("resident_id", FieldType.resident_id, "身份证号", "Resident ID",
                 sensitivity=S, searchable=True, column=False),
        FieldDef("credit_code", FieldType.credit_code, "统一社会信用代码",
                 "Unified social credit code", searchable=True),
        FieldDef("legal_representative", FieldType.text, "法定代表人", "Legal representative",
                 sensitivity=P, max_length=100),
        FieldDef("gender", FieldType.single_select, "性别", "Gender",
                 options=(Choice("male", "男", "Male"), Choice("female", "女", "Female"))),
        FieldDef("mobile", FieldType.phone, "手机号", "Mobile", sensitivity=S, searchable=True,
                 column=False),
        FieldDef("email", FieldType.email, "电子邮箱", "Email", sensitivity=P),
        FieldDef("address", FieldType.text, "地址", "Address", sensitivity=P, max_length=300),
        FieldDef("region", FieldType.region, "所在地区", "Region", sortable=True),
        FieldDef("industry", FieldType.single_select, "行业", "Industry", options=INDUSTRIES),
        FieldDef("annual_income", FieldType.money, "年收入（元）", "Annual income (CNY)",
                 sensitivity=P, min_value=None, sortable=True),
        FieldDef("source", FieldType.text, "来源渠道", "Source", max_length=40),
    ),
    checks=(_identity_required,),
    idempotent="optional",  # a retried create with the same Idempotency-Key makes no twin
)
