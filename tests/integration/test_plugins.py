"""The plugin system: built-ins and an external entry-point plugin, chosen per process and
enabled per tenant (a disabled plugin's routes, menus, events, jobs and providers vanish)."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from core import hookspecs, records
from core.errors import NotFound
from core.plugins import PluginError, Plugins
from tests.conftest import ROOT, login

VALID = {"kind": "company", "name": "晋中示例商贸有限公司", "credit_code": "91110000600037341L"}


def hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "xindai_spec")]


def test_every_hook_is_typed_and_documented() -> None:
    names = hook_names()
    assert len(names) >= 14
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\w+)\s*$", docs, flags=re.M))
    assert [n for n in names if n not in headings] == []
    for name in names:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and len(fn.__doc__.strip()) > 30, name
        assert "return" in fn.__annotations__, name


def test_builtin_and_external_plugins_load_alike() -> None:
    plugins = Plugins()
    info = {p.name: p for p in plugins.info()}
    assert info["crm"].builtin and not info["example"].builtin
    assert info["example"].version == "0.3.1"
    assert {"register_routes", "register_jobs", "choose_provider"} <= set(info["example"].hooks)
    assert "register_entities" in info["crm"].hooks


def test_choose_plugins_per_process() -> None:
    assert Plugins(only=("crm",)).names == ["crm"]
    assert "example" not in Plugins(disable=("example",)).names
    with pytest.raises(PluginError) as info:
        Plugins(only=("crm", "nonexistent"))
    assert "nonexistent" in str(info.value)


async def test_disabled_plugin_routes_answer_404(client: Any, new_tenant: Any) -> None:
    on = await new_tenant(plugins=["crm", "example"], records=False)
    off = await new_tenant(plugins=["crm"], records=False)
    r = await client.get("/api/v1/example/ping", headers=await login(client, on.tenant.slug))
    assert r.status_code == 200 and r.json() == {"tenant": on.tenant.slug, "plugin": "example"}
    r = await client.get("/api/v1/example/ping", headers=await login(client, off.tenant.slug))
    assert r.status_code == 404


async def test_disabled_plugin_entities_do_not_exist(client: Any, new_tenant: Any) -> None:
    bare = await new_tenant(plugins=[], records=False)
    with pytest.raises(NotFound):
        await records.create(bare, "customer", VALID)
    r = await client.get("/api/v1/customers", headers=await login(client, bare.tenant.slug))
    assert r.status_code == 404 and r.json()["code"] == "unknown_entity"


async def test_menus_events_jobs_and_providers_follow_enablement(kernel: Any,
                                                                 new_tenant: Any) -> None:
    from xindai_example_plugin import SEEN

    from core.jobs import enqueue, jobs_for

    on = await new_tenant(plugins=["crm", "example"], records=False)
    off = await new_tenant(plugins=["crm"], records=False)
    crm_menu = [m.key for m in kernel.menu_for(off.tenant)]
    assert {"customers", "my_tasks"} <= set(crm_menu)
    assert {m.plugin for m in kernel.menu_for(off.tenant)} == {"crm"}
    assert [m.key for m in kernel.menu_for(on.tenant) if m.plugin != "crm"] == ["example"]

    def plugin_jobs(jobs: list[Any]) -> list[str]:
        return [j.name for j in jobs if j.plugin == "example"]  # what enablement of example adds

    assert plugin_jobs(kernel.periodic_jobs_for(on.tenant)) == ["example.nightly"]
    assert plugin_jobs(kernel.periodic_jobs_for(off.tenant)) == []
    assert plugin_jobs(jobs_for(on)) == ["example.touch", "example.flaky", "example.slow",
                                         "example.steps"]
    assert plugin_jobs(jobs_for(off)) == []
    with pytest.raises(NotFound):
        await enqueue(off, "example.touch", note="x")
    assert kernel.provider("sms", on.tenant) == "example-sms"
    assert kernel.provider("sms", off.tenant) is None
    assert SEEN[on.tenant.slug] == ["onboarded"] and off.tenant.slug not in SEEN
    rec_on = await records.create(on, "customer", VALID)
    await records.create(off, "customer", VALID)
    assert SEEN[on.tenant.slug] == ["onboarded"]  # events are delivered after commit
    from core.outbox import run_due

    assert await run_due(on.tenant) == 1 and await run_due(off.tenant) == 1
    assert SEEN[on.tenant.slug] == ["onboarded", f"customer.created:{rec_on['id']}"]
    assert off.tenant.slug not in SEEN


async def test_enabling_a_plugin_later_runs_its_onboarding(kernel: Any, new_tenant: Any) -> None:
    from xindai_example_plugin import SEEN

    from core.tenancy import set_plugin_enabled

    ctx = await new_tenant(plugins=["crm"], records=False)
    tenant = await set_plugin_enabled(ctx.tenant.slug, "example", True)
    assert tenant.enabled("example") and SEEN[ctx.tenant.slug] == ["onboarded"]
    tenant = await set_plugin_enabled(ctx.tenant.slug, "example", False)
    assert tenant.plugins == ("crm",)
    with pytest.raises(NotFound):
        await set_plugin_enabled(ctx.tenant.slug, "nope", True)


async def test_plugin_settings_and_pack_sections(kernel: Any, tmp_path: Any) -> None:
    import yaml

    from core.packs import apply_pack, export_pack, load_pack
    from tests.conftest import SMALL_PACK

    pack = load_pack(SMALL_PACK)
    pack.doc["tenant"]["plugins"] = ["crm", "example"]
    pack.doc["example"] = {"greeting": "欢迎光临"}
    info, _ = await apply_pack(pack, slug="greeter")
    from core.tenancy import get_tenant

    tenant = await get_tenant("greeter")
    assert kernel.setting(tenant, "example.greeting") == "欢迎光临"
    plain, _ = await apply_pack(load_pack(SMALL_PACK), slug="plain-greeter")
    with pytest.raises(KeyError):  # the plugin is not enabled there: no such setting
        kernel.setting(plain, "example.greeting")
    await export_pack("greeter", tmp_path / "out", include_records=False)
    doc = yaml.safe_load((tmp_path / "out" / "pack.yaml").read_text(encoding="utf-8"))
    assert doc["example"] == {"greeting": "欢迎光临"}


def test_a_plugin_with_an_unknown_hook_is_refused_by_name(monkeypatch: Any) -> None:
    import core.plugins

    monkeypatch.setattr(core.plugins, "BUILTIN_PLUGINS",
                        (*core.plugins.BUILTIN_PLUGINS, "tests.fixtures.bad_plugin"))
    with pytest.raises(PluginError) as info:
        Plugins()
    assert "register_nonsense" in str(info.value)


async def test_a_failing_onboarding_enables_nothing(kernel: Any, new_tenant: Any,
                                                    monkeypatch: Any) -> None:
    import xindai_example_plugin

    from core.tenancy import get_tenant, set_plugin_enabled

    ctx = await new_tenant(plugins=["crm"], records=False)

    def broken(ctx: Any) -> Any:
        raise RuntimeError("seed failed")

    impl = next(i for i in kernel.plugins.pm.hook.tenant_onboarding.get_hookimpls()
                if i.plugin_name == "example")
    monkeypatch.setattr(impl, "function", broken)
    with pytest.raises(RuntimeError):
        await set_plugin_enabled(ctx.tenant.slug, "example", True)
    assert (await get_tenant(ctx.tenant.slug)).plugins == ("crm",)
    assert xindai_example_plugin.SEEN.get(ctx.tenant.slug) is None
