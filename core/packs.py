"""Tenant packs: a declarative YAML format for a tenant's configuration and sample data.

A pack is a folder with `pack.yaml`:

    format: 1
    tenant:  {slug, name, locale, timezone, business_date, plugins, settings}
    fields:  {entity: [field spec, ...]}          # custom fields
    roles:   [{name, label: {zh-CN, en}, permissions: [...]}]
    users:   [{username, display_name, roles, password?}]
    <plugin section>: ...                         # e.g. products, from the servicing plugin
    records: {entity: [record, ...] | "file.yaml"}

Loading is all-or-nothing (one transaction), and every error names the file and line.
`export_pack` writes the same format back, so a tenant round-trips.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from core import admin, records
from core.crypto import create_tenant_key
from core.customfields import add_custom_field, custom_fields
from core.errors import ValidationFailed, XindaiError
from core.identity import create_user, generate_password
from core.setting_secrets import revealed, seal, secret_keys
from core.tables import Tenant
from core.tenancy import (
    SLUG_RE,
    Context,
    TenantInfo,
    get_tenant,
    run_onboarding,
    tenant_scope,
)

FORMAT = 1
CORE_SECTIONS = ("format", "tenant", "fields", "org_units", "roles", "field_policies", "users",
                 "records")


class PackError(Exception):
    """A pack problem, located: `path:line: message`."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line = path, line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class LineDict(dict):
    """A mapping that remembers the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:
        mapping = LineDict(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(k.value): k.start_mark.line + 1 for k, _ in node.value
        }
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackError(str(path), None, "文件不存在 / file not found") from None
    except UnicodeDecodeError:
        raise PackError(str(path), None, "不是 UTF-8 文本 / not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise PackError(str(path), mark.line + 1 if mark else None,
                        f"YAML 语法错误 / YAML syntax error: {exc.problem}") from None


def _line(node: Any, key: str | None = None) -> int | None:
    if isinstance(node, LineDict):
        return node.key_lines.get(key, node.line) if key else node.line
    return None


@dataclass
class Pack:
    """A parsed pack: the top-level document and where it came from."""

    path: Path
    doc: LineDict
    record_files: dict[str, tuple[Path, list[Any]]] = field(default_factory=dict)

    def fail(self, node: Any, message: str, key: str | None = None,
             path: Path | None = None) -> PackError:
        return PackError(str(path or self.path), _line(node, key), message)


def load_pack(location: str | Path) -> Pack:
    """Read and structurally check a pack folder (or a pack.yaml file)."""
    from core.kernel import kernel

    path = Path(location)
    if path.is_dir():
        path = path / "pack.yaml"
    doc = read_yaml(path)
    if not isinstance(doc, LineDict):
        raise PackError(str(path), 1, "顶层必须是映射 / the top level must be a mapping")
    pack = Pack(path, doc)
    known = set(CORE_SECTIONS) | {s.name for s in kernel().pack_sections}
    for key in doc:
        if key not in known:
            raise pack.fail(doc, f"未知的配置段“{key}” / unknown section '{key}'", key)
    if doc.get("format", FORMAT) != FORMAT:
        raise pack.fail(doc, f"不支持的格式版本 / unsupported format {doc.get('format')}", "format")
    tenant = doc.get("tenant")
    if not isinstance(tenant, LineDict) or not tenant.get("slug") or not tenant.get("name"):
        raise pack.fail(doc, "tenant 段需要 slug 和 name / section tenant needs slug and name",
                        "tenant")
    plugins = tenant.get("plugins")
    enabled = set(kernel().plugin_names() if plugins is None else plugins)
    for section in kernel().pack_sections:
        if section.name in doc and section.plugin not in enabled:
            raise pack.fail(doc, f"配置段“{section.name}”属于插件 {section.plugin}，但租户未启用它 / "
                            f"section '{section.name}' belongs to plugin {section.plugin}, "
                            "which the tenant does not enable", section.name)
    recs = doc.get("records") or {}
    if not isinstance(recs, dict):
        raise pack.fail(doc, "records 必须是映射 / records must be a mapping", "records")
    for entity, value in recs.items():
        if isinstance(value, str):
            file = path.parent / value
            rows = read_yaml(file)
            if not isinstance(rows, list):
                raise PackError(str(file), 1, "必须是记录列表 / must be a list of records")
            pack.record_files[entity] = (file, rows)
        elif isinstance(value, list):
            pack.record_files[entity] = (path, value)
        else:
            raise pack.fail(recs, "应为列表或文件名 / expected a list or a file name", entity)
    return pack


def _tenant_info(pack: Pack, slug: str | None) -> TenantInfo:
    from core.kernel import kernel

    t = pack.doc["tenant"]
    plugins = t.get("plugins")
    if plugins is None:
        plugins = kernel().plugin_names()
    for p in plugins:
        if p not in kernel().plugin_names():
            raise pack.fail(t, f"插件“{p}”未安装 / plugin '{p}' is not installed", "plugins")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    defaults = kernel().settings  # XINDAI_LOCALE / XINDAI_TIMEZONE: defaults for new tenants
    t.setdefault("locale", defaults.locale)
    t.setdefault("timezone", defaults.timezone)
    try:
        ZoneInfo(str(t["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise pack.fail(t, f"未知时区 / unknown time zone {t.get('timezone')!r}",
                        "timezone") from None
    if t["locale"] not in ("zh-CN", "en"):
        raise pack.fail(t, "locale 只能是 zh-CN 或 en / locale must be zh-CN or en", "locale")
    raw_date = t.get("business_date") or date.today()
    if not isinstance(raw_date, date):
        raise pack.fail(t, "business_date 应为日期 / business_date must be a date",
                        "business_date")
    return TenantInfo(
        id=uuid.uuid4(), slug=slug or str(t["slug"]), name=str(t["name"]), status="active",
        locale=str(t["locale"]), timezone=str(t["timezone"]),
        business_date=raw_date, plugins=tuple(plugins), settings=dict(t.get("settings") or {}),
    )


def _located(pack: Pack, node: Any, exc: ValidationFailed, path: Path | None = None,
             prefix: str = "") -> PackError:
    first = exc.errors[0]
    line = _line(node, first.field) if first.field else _line(node)
    msgs = "; ".join(f"{prefix}{e.field}: {e.message('zh-CN')} / {e.message('en')}"
                     for e in exc.errors)
    return PackError(str(path or pack.path), line, msgs)


async def apply_pack(pack: Pack, slug: str | None = None) -> tuple[TenantInfo, dict[str, str]]:
    """Create the tenant and everything in the pack, in one transaction.

    Returns the tenant and the generated passwords of users that had none in the pack.
    """
    from core.kernel import kernel

    info = _tenant_info(pack, slug)
    if info.slug == kernel().settings.platform_tenant:
        raise pack.fail(pack.doc["tenant"], f"租户标识“{info.slug}”保留给平台运营 / slug "
                        f"'{info.slug}' is reserved for the platform operator", "slug")
    if not SLUG_RE.fullmatch(info.slug):
        raise pack.fail(pack.doc["tenant"], f"租户标识“{info.slug}”无效：只能用小写字母、数字和"
                        f"连字符 / invalid tenant slug '{info.slug}': lowercase letters, digits "
                        "and hyphens", "slug")
    if await Tenant.exists().where(Tenant.slug == info.slug).run():
        raise pack.fail(pack.doc["tenant"], f"租户“{info.slug}”已存在 / tenant '{info.slug}' "
                        "already exists", "slug")
    ctx = Context.system(info)
    passwords: dict[str, str] = {}
    async with tenant_scope(ctx):
        await Tenant.insert(Tenant(
            id=info.id, slug=info.slug, name=info.name, locale=info.locale,
            timezone=info.timezone, business_date=info.business_date,
            plugins=list(info.plugins), settings=info.settings,
        )).run()
        await create_tenant_key(kernel().master_key, info.id)
        if secret_keys() & set(info.settings):  # plain secrets from the pack, sealed now
            sealed = await seal(ctx, info.settings)
            await Tenant.update({Tenant.settings: sealed}).where(Tenant.id == info.id).run()
            info = replace(info, settings=sealed)
            ctx = Context.system(info)
        await run_onboarding(ctx)
        await _load_fields(pack, ctx)
        await _load_org_units(pack, ctx)
        await _load_roles(pack, ctx)
        await admin.ensure_builtin_roles(ctx)
        await _load_field_policies(pack, ctx)
        passwords = await _load_users(pack, ctx)
        owners = {u["username"]: u for u in await admin.list_users(ctx)}
        await _load_sections(pack, ctx, info, after_records=False)
        for entity, (path, rows) in pack.record_files.items():
            for i, row in enumerate(rows):
                try:
                    data = dict(row)
                    owner = owners.get(data.pop("owner", None) or "")
                    if "owner" in row and owner is None:
                        raise pack.fail(row, f"未知用户 / unknown user: {row['owner']}",
                                        "owner", path)
                    await records.create(ctx, entity, data, owner=owner)
                except ValidationFailed as exc:
                    raise _located(pack, row, exc, path, f"[{i + 1}] ") from None
                except XindaiError as exc:
                    raise PackError(str(path), _line(row), f"{exc.message('zh-CN')} / "
                                    f"{exc.message('en')}") from None
        await _load_sections(pack, ctx, info, after_records=True)
    return info, passwords


async def _load_sections(pack: Pack, ctx: Context, info: Any, after_records: bool) -> None:
    """Plugin sections in their order; those that refer to records come after the records."""
    from core.declarations import PackSource
    from core.kernel import kernel

    for section in sorted(kernel().pack_sections, key=lambda s: s.order):
        if section.after_records == after_records and section.name in pack.doc \
                and info.enabled(section.plugin):
            await section.load(ctx, pack.doc[section.name],
                               PackSource(str(pack.path), dict(pack.doc.key_lines)))


async def _load_fields(pack: Pack, ctx: Context) -> None:
    fields = pack.doc.get("fields") or {}
    if not isinstance(fields, dict):
        raise pack.fail(pack.doc, "fields 必须是映射 / fields must be a mapping", "fields")
    for entity, specs in fields.items():
        if not isinstance(specs, list):
            raise pack.fail(fields, f"{entity} 应为字段列表 / {entity} must be a list of fields",
                            entity)
        for spec in specs:
            if not isinstance(spec, dict):
                raise pack.fail(fields, "字段定义应为映射 / a field must be a mapping", entity)
            try:
                await add_custom_field(ctx, entity, dict(spec))
            except ValidationFailed as exc:
                raise _located(pack, spec, exc) from None
            except XindaiError as exc:
                raise pack.fail(spec, f"{exc.message('zh-CN')} / {exc.message('en')}") from None


def _list_section(pack: Pack, name: str) -> list[Any]:
    value = pack.doc.get(name) or []
    if not isinstance(value, list):
        raise pack.fail(pack.doc, f"{name} 应为列表 / {name} must be a list", name)
    return value


async def _load_org_units(pack: Pack, ctx: Context) -> None:
    """`org_units: [{code, name, parent}]`, parents before children."""
    for spec in _list_section(pack, "org_units"):
        if not isinstance(spec, dict):
            raise pack.fail(pack.doc, "机构应为映射 / a unit must be a mapping", "org_units")
        try:
            await admin.create_org_unit(ctx, str(spec.get("code", "")),
                                        str(spec.get("name", "")), spec.get("parent"))
        except XindaiError as exc:
            raise pack.fail(spec, f"{exc.message('zh-CN')} / {exc.message('en')}") from None


async def _load_field_policies(pack: Pack, ctx: Context) -> None:
    """`field_policies: [{role, entity, field, policy}]`."""
    for spec in _list_section(pack, "field_policies"):
        if not isinstance(spec, dict):
            raise pack.fail(pack.doc, "应为映射 / must be a mapping", "field_policies")
        try:
            await admin.set_field_policy(ctx, str(spec.get("role")), str(spec.get("entity")),
                                         str(spec.get("field")), str(spec.get("policy")))
        except XindaiError as exc:
            raise pack.fail(spec, f"{exc.message('zh-CN')} / {exc.message('en')}") from None


async def _load_roles(pack: Pack, ctx: Context) -> None:
    from core.kernel import kernel

    known = {p.code for p in kernel().permissions}
    roles = _list_section(pack, "roles")
    if not isinstance(roles, list):
        raise pack.fail(pack.doc, "roles 应为列表 / roles must be a list", "roles")
    for spec in roles:
        if not isinstance(spec, dict) or not spec.get("name"):
            raise pack.fail(spec, "角色需要 name / a role needs a name")
        perms = list(spec.get("permissions") or [])
        unknown = [p for p in perms if p not in known and p != "*"]
        if unknown:
            raise pack.fail(spec, f"未知权限 / unknown permissions: {', '.join(unknown)}",
                            "permissions")
        label = spec.get("label") or {}
        if isinstance(label, str):
            label = {"zh-CN": label, "en": label}
        if not isinstance(label, dict):
            raise pack.fail(spec, "label 应为映射 / label must be a mapping", "label")
        try:
            await admin.save_role(ctx, str(spec["name"]), label.get("zh-CN", spec["name"]),
                                  label.get("en", spec["name"]), perms,
                                  str(spec.get("scope", "own")))
        except XindaiError as exc:
            raise pack.fail(spec, f"{exc.message('zh-CN')} / {exc.message('en')}") from None


async def _load_users(pack: Pack, ctx: Context) -> dict[str, str]:
    passwords: dict[str, str] = {}
    role_names = {r["name"] for r in await admin.list_roles(ctx)}
    for spec in _list_section(pack, "users"):
        if not isinstance(spec, dict) or not spec.get("username"):
            raise pack.fail(spec, "用户需要 username / a user needs a username")
        bad = [r for r in spec.get("roles") or [] if r not in role_names]
        if bad:
            raise pack.fail(spec, f"未知角色 / unknown roles: {', '.join(bad)}", "roles")
        password = spec.get("password") or generate_password()
        if not spec.get("password"):
            passwords[spec["username"]] = password
        try:
            unit = await admin.unit_by_code(ctx, spec["org_unit"]) if spec.get("org_unit") \
                else None
            await create_user(ctx, str(spec["username"]),
                              str(spec.get("display_name", spec["username"])),
                              str(password), list(spec.get("roles") or []),
                              unit["id"] if unit else None)
        except XindaiError as exc:
            raise pack.fail(spec, f"{exc.message('zh-CN')} / {exc.message('en')}") from None
    return passwords


async def export_pack(tenant_slug: str, out_dir: Path, include_records: bool = True) -> Path:
    """Write the tenant as a pack folder: pack.yaml plus one YAML file per entity's records.

    Records are written with secret fields in clear (a pack must be loadable elsewhere):
    the folder holds personal data and must be handled as such.
    """
    from core.kernel import kernel

    tenant = await get_tenant(tenant_slug)
    ctx = Context.system(tenant)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    out_dir.chmod(0o700)  # an export holds personal data in clear: owner only
    doc: dict[str, Any] = {"format": FORMAT, "tenant": {
        "slug": tenant.slug, "name": tenant.name, "locale": tenant.locale,
        "timezone": tenant.timezone, "business_date": tenant.business_date,
        "plugins": list(tenant.plugins), "settings": await revealed(ctx),
    }}
    async with tenant_scope(ctx, write=False):
        fields: dict[str, list[dict[str, Any]]] = {}
        for name in kernel().registry.entities:
            specs = [_field_spec(f) for f in await custom_fields(ctx, name)]
            if specs:
                fields[name] = specs
        if fields:
            doc["fields"] = fields
        units = await admin.list_org_units(ctx)
        codes = {u["id"]: u["code"] for u in units}
        if units:
            doc["org_units"] = [{"code": u["code"], "name": u["name"],
                                 **({"parent": codes[u["parent_id"]]} if u["parent_id"] else {})}
                                for u in units]
        roles = await admin.list_roles(ctx)
        if roles:
            doc["roles"] = [{"name": r["name"], "label": {"zh-CN": r["label_zh"],
                             "en": r["label_en"]}, "scope": r["scope"],
                             "permissions": r["permissions"]} for r in roles]
        policies = await admin.list_field_policies(ctx)
        if policies:
            doc["field_policies"] = [dict(p) for p in policies]
        users = await admin.list_users(ctx)
        if users:
            doc["users"] = [{"username": u["username"], "display_name": u["display_name"],
                             "roles": u["roles"],
                             **({"org_unit": codes[u["org_unit_id"]]} if u["org_unit_id"]
                                else {})} for u in users]
        for section in kernel().pack_sections:
            if tenant.enabled(section.plugin):
                value = await section.export(ctx)
                if value:
                    doc[section.name] = value
        if include_records:
            doc["records"] = {}
            for name, entity in kernel().registry.entities.items():
                # a plugin that writes an entity through its own service (an application,
                # checked against its product) keeps it out: a pack can only load records
                # the generic write path accepts, and such records refer to others by id
                if not tenant.enabled(entity.plugin) or not entity.generic_writes:
                    continue
                rows = await _export_records(ctx, name, {u["id"]: u["username"] for u in users})
                if rows:
                    file = f"{entity.api_path}.yaml"
                    _dump(out_dir / file, rows)
                    doc["records"][name] = file
    target = out_dir / "pack.yaml"
    _dump(target, doc)
    return target


def _field_spec(f: Any) -> dict[str, Any]:
    d = f.describe()
    d.pop("custom", None)
    d.pop("column", None)
    d["label"] = {"zh-CN": d.pop("label_zh"), "en": d.pop("label_en")}
    return d


async def _export_records(ctx: Context, entity_name: str,
                          usernames: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    page = 1
    # fields the system maintains (a lead's stage, its last activity) are set again by the
    # plugin's rules when the pack loads; the create path refuses them as input
    readonly = {f.key for f in (await records.entity_for(ctx, entity_name)).fields
                if f.readonly}
    while True:
        batch = await records.list_records(ctx, entity_name, page=page, per_page=200,
                                           sort="created_at")
        for item in batch.items:
            full = await records.get(ctx, entity_name, item["id"], reveal=True)
            row = {k: v for k, v in full.items()
                   if k not in records.SYSTEM_KEYS and k not in readonly and v is not None}
            owner = usernames.get(row.pop("owner_id", None) or "")
            row.pop("org_unit_id", None)
            out.append({**row, **({"owner": owner} if owner else {})})
        if page * batch.per_page >= batch.total:
            return out
        page += 1


class _PackDumper(yaml.SafeDumper):
    """Safe YAML that also writes dict and list subclasses (the JSON columns the database
    returns, such as a product's config) as plain mappings and sequences."""


_PackDumper.add_multi_representer(dict, yaml.representer.SafeRepresenter.represent_dict)
_PackDumper.add_multi_representer(list, yaml.representer.SafeRepresenter.represent_list)


def _dump(path: Path, data: Any) -> None:
    """Write YAML readable by the owner only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(yaml.dump(data, Dumper=_PackDumper, allow_unicode=True, sort_keys=False))
    path.chmod(0o600)
