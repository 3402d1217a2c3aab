"""`xindai schedule`: one JSON request on stdin, the schedule as JSON on stdout.

For integrators and auditors; it needs no database or settings beyond the plugin list.
Bad input exits 2 with one line `错误 / error: <zh-CN> / <en>` on stderr.
"""

from __future__ import annotations

import sys

import click

MAX_REQUEST_BYTES = 1 << 20


@click.command("schedule")
def schedule() -> None:
    """Read a schedule request (JSON) on stdin and print the schedule with its APR as JSON.

    See docs/servicing.md for the request and response contract.
    """
    from core.cli import fail
    from plugins.servicing.request import parse_json
    from plugins.servicing.response import dumps
    from plugins.servicing.schedule import TermsError, build_schedule

    raw = sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1)
    if len(raw) > MAX_REQUEST_BYTES:
        fail("请求超过 1 MiB / the request is larger than 1 MiB", 2)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("请求须为 UTF-8 编码 / the request must be UTF-8", 2)
    try:
        result = build_schedule(parse_json(text))
    except TermsError as exc:
        fail(str(exc), 2)
    click.echo(dumps(result, indent=2))
