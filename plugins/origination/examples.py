"""The demo pack's approval workflow, the main example of docs/workflows.md.

Boundaries (amounts in yuan, compared as Decimal): below 100,000 the risk reviewer alone
decides; from 100,000 up to and including 500,000 the branch manager follows; above
500,000 (500,000.01 and up) finance and the general manager countersign. So 99,999.99
is decided by one approver, 100,000 and 500,000 by two, 500,000.01 by three.
"""

from __future__ import annotations

from typing import Any

DEMO_WORKFLOW: dict[str, Any] = {
    "id": "loan_approval",
    "version": 1,
    "name": {"zh-CN": "贷款审批", "en": "Loan approval"},
    "start": "risk_review",
    "steps": [
        {
            "id": "risk_review",
            "name": {"zh-CN": "风险审查", "en": "Risk review"},
            "mode": "any",
            "assignees": {"roles": ["risk_reviewer"]},
            "deadline_hours": 24,
            "remind_before_hours": 4,
            "escalate_to": {"role": "branch_manager"},
            "next": [
                {"when": {"field": "amount", "op": "lt", "value": "100000"}, "to": "approved"},
                {"when": {"field": "amount", "op": "between", "value": ["100000", "500000"]},
                 "to": "branch_review"},
                {"to": "final_countersign"},
            ],
        },
        {
            "id": "branch_review",
            "name": {"zh-CN": "部门经理审批", "en": "Branch manager approval"},
            "mode": "any",
            "assignees": {"roles": ["branch_manager"]},
            "deadline_hours": 24,
            "remind_before_hours": 4,
            "escalate_to": {"role": "general_manager"},
            "next": "approved",
        },
        {
            "id": "final_countersign",
            "name": {"zh-CN": "财务与总经理会签", "en": "Finance and general manager countersign"},
            "mode": "all",
            "assignees": {"roles": ["finance", "general_manager"]},
            "deadline_hours": 48,
            "remind_before_hours": 8,
            "next": "approved",
        },
    ],
}
