"""crm tables. Secret fields (resident ID, mobile) have no column: they are sealed."""

from piccolo.columns import BigInt, Varchar
from piccolo.table import Table

from core.tables import RecordColumns


class Customer(RecordColumns, Table, tablename="crm_customer"):
    kind = Varchar(length=20)  # individual | company
    name = Varchar(length=200)  # index crm_customer_tenant_name (tenant_id, name)
    credit_code = Varchar(length=18, null=True, default=None)
    legal_representative = Varchar(length=100, null=True, default=None)
    gender = Varchar(length=10, null=True, default=None)
    email = Varchar(length=254, null=True, default=None)
    address = Varchar(length=300, null=True, default=None)
    region = Varchar(length=6, null=True, default=None)
    industry = Varchar(length=40, null=True, default=None)
    annual_income = BigInt(null=True, default=None)  # fen
    source = Varchar(length=40, null=True, default=None)
