"""Locust scenario: loan officers at work (customer search and the approval inbox).

Each simulated officer signs in with a bearer token handed over by the driver
(`tests/bench/bench_officers.py`, which seeds the tenant and prints the figures), then,
with a few seconds of think time between actions:
- searches customers by name, by a mobile number (blind index) and pages the list;
- opens the approval inbox (counts and the first page) and filters it by product.

    LOAD_TOKENS=/tmp/tokens.json locust -f tests/load/locustfile.py --headless -u 50 ...
"""

from __future__ import annotations

import json
import os
import random
from itertools import count

from locust import HttpUser, between, task

TOKENS: list[str] = json.loads(open(os.environ["LOAD_TOKENS"]).read())["tokens"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_next = count()


class Officer(HttpUser):
    wait_time = between(1, 3)  # think time: reading the screen before the next click

    def on_start(self) -> None:
        token = TOKENS[next(_next) % len(TOKENS)]
        self.client.headers["Authorization"] = f"Bearer {token}"

    @task(3)
    def search_by_name(self) -> None:
        self.client.get("/api/v1/customers", params={"q": random.choice(SURNAMES)},
                        name="customers?q=name")

    @task(2)
    def search_by_mobile(self) -> None:
        mobile = f"139{random.randrange(int(os.environ.get('LOAD_CUSTOMERS', '1000'))):08d}"
        self.client.get("/api/v1/customers", params={"mobile": mobile},
                        name="customers?mobile=")

    @task(1)
    def customer_page(self) -> None:
        self.client.get("/api/v1/customers", params={"page": random.randint(1, 20),
                                                     "sort": "-annual_income"},
                        name="customers?page")

    @task(4)
    def inbox(self) -> None:
        self.client.get("/api/v1/approvals/inbox", name="approvals/inbox")

    @task(1)
    def inbox_filtered(self) -> None:
        self.client.get("/api/v1/approvals/inbox", params={"subject": "application"},
                        name="approvals/inbox?subject")
