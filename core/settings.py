"""One typed settings object, read from `XINDAI_*` environment variables and an optional TOML file.

Precedence: environment variable > TOML file > default. The TOML file is `XINDAI_CONFIG`
if set, else `./xindai.toml` if it exists. Any invalid value stops start-up with one line
naming the setting (`SettingsError`), because a half-configured lender system is worse
than one that does not start.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "XINDAI_"
Profile = Literal["embedded", "saas", "onprem"]
Locale = Literal["zh-CN", "en"]
MAX_DOCUMENT_BYTES = 1024 * 1024 * 1024  # an upload limit above 1 GiB is a mistake


class SettingsError(Exception):
    """An invalid setting; str() is the one line shown to the operator."""

    def __init__(self, name: str, zh: str, en: str) -> None:
        self.name = name
        super().__init__(f"配置错误 {name}: {zh} / invalid setting {name}: {en}")


@dataclass(frozen=True)
class Settings:
    """Everything the process needs to know about its environment."""

    data_dir: Path = Path("var")
    database_url: str = field(default="", repr=False)  # default: sqlite under data_dir
    migrate_database_url: str = field(default="", repr=False)  # owner role; default: above
    redis_url: str = field(default="", repr=False)  # unset: embedded in-process jobs
    profile: Profile = "embedded"
    host: str = "127.0.0.1"
    port: int = 8000
    locale: Locale = "zh-CN"
    timezone: str = "Asia/Shanghai"
    plugins: tuple[str, ...] = ()  # empty: all installed plugins
    disable_plugins: tuple[str, ...] = ()
    key_file: Path = Path("")  # default: data_dir/master.key
    master_key: str = field(default="", repr=False)  # base64; overrides key_file
    db_pool_size: int = 10
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    platform_tenant: str = "platform"  # its users with platform.tenants manage all tenants
    audit_key_file: Path = Path("")  # Ed25519 key signing audit checkpoints; default data_dir
    redis_namespace: str = "xindai"  # key prefix, so deployments can share one Redis
    event_ack_seconds: int = 60  # an unfinished message is sent again after this
    relay_poll_ms: int = 200  # how often the relay looks for due messages when idle
    scheduler_tick_seconds: int = 15  # how often the scheduler leader checks periodic jobs
    webhook_attempts: int = 20  # tries per webhook delivery before it is dead (about 8 hours)
    idempotency_ttl_hours: int = 24  # how long an Idempotency-Key and its answer are kept
    document_dir: Path = Path("")  # encrypted uploaded documents; default data_dir/documents
    document_max_bytes: int = 20 * 1024 * 1024  # largest accepted upload (HTTP 413 above)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://"))

    @property
    def sqlite_path(self) -> Path:
        """`sqlite:///var/x.db` is relative, `sqlite:////srv/x.db` absolute."""
        return Path(self.database_url.removeprefix("sqlite:///"))


def _env_name(attr: str) -> str:
    return PREFIX + attr.upper()


def _convert(name: str, raw: Any, typ: Any) -> Any:
    """Turn a raw env string or TOML value into `typ`, or raise SettingsError naming `name`."""
    args = get_args(typ)
    if typ is Path:
        if not isinstance(raw, str):
            raise SettingsError(name, "应为路径", "expected a path")
        return Path(raw)
    if typ is int:
        if not isinstance(raw, int | str) or isinstance(raw, bool):
            raise SettingsError(name, f"应为整数，实际为 {raw!r}", f"expected an integer, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise SettingsError(
                name, f"应为整数，实际为 {raw!r}", f"expected an integer, got {raw!r}"
            ) from None
    if typ == tuple[str, ...]:
        if isinstance(raw, str):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
            return tuple(raw)
        raise SettingsError(name, "应为逗号分隔的名称列表", "expected a comma-separated list")
    if args and all(isinstance(a, str) for a in args):  # Literal
        if raw not in args:
            allowed = ", ".join(args)
            raise SettingsError(
                name, f"取值 {raw!r} 无效，可选：{allowed}", f"{raw!r} is not one of: {allowed}"
            )
        return raw
    if not isinstance(raw, str):
        raise SettingsError(name, "应为文本", "expected a string")
    return raw


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError("XINDAI_CONFIG", f"找不到文件 {path}", f"file {path} not found") from None
    except OSError as exc:
        raise SettingsError("XINDAI_CONFIG", f"无法读取 {path}：{exc.strerror}",
                            f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            "XINDAI_CONFIG", f"{path} 不是有效的 TOML：{exc}", f"{path} is not valid TOML: {exc}"
        ) from None
    return data.get("xindai", data)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build Settings from the environment (and TOML file); raise SettingsError on bad input."""
    env = dict(os.environ if environ is None else environ)
    config_path = env.get("XINDAI_CONFIG")
    toml: dict[str, Any] = {}
    if config_path:
        toml = _read_toml(Path(config_path))
    elif Path("xindai.toml").is_file():
        toml = _read_toml(Path("xindai.toml"))

    hints = get_type_hints(Settings)
    known = {f.name for f in fields(Settings)}
    for key in toml:
        if key not in known:
            raise SettingsError(
                f"{config_path or 'xindai.toml'}: {key}", "未知的配置项", "unknown setting"
            )
    for key in env:
        if key.upper().startswith(PREFIX) and key != "XINDAI_CONFIG" and (
            key != key.upper() or key[len(PREFIX):].lower() not in known
        ):
            raise SettingsError(key, "未知的配置项（名称须大写）", "unknown setting (names are upper case)")

    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = _env_name(f.name)
        if name in env:
            values[f.name] = _convert(name, env[name], hints[f.name])
        elif f.name in toml:
            values[f.name] = _convert(f"{name} (toml {f.name})", toml[f.name], hints[f.name])
    settings = Settings(**values)
    return _complete(settings)


def _complete(s: Settings) -> Settings:
    """Fill derived defaults and check cross-field rules."""
    from dataclasses import replace

    if not s.database_url:
        s = replace(s, database_url=f"sqlite:///{(s.data_dir / 'xindai.sqlite3').as_posix()}")
    if not (s.database_url.startswith("sqlite:///") or s.is_postgres):
        raise SettingsError(
            "XINDAI_DATABASE_URL",
            "只支持 sqlite:/// 或 postgresql:// 开头的地址",
            "must start with sqlite:/// or postgresql://",
        )
    if s.migrate_database_url and not s.migrate_database_url.startswith(
        ("postgres://", "postgresql://", "sqlite")
    ):
        raise SettingsError(
            "XINDAI_MIGRATE_DATABASE_URL",
            "只支持 sqlite:/// 或 postgresql:// 开头的地址",
            "must start with sqlite:/// or postgresql://",
        )
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(
            "XINDAI_REDIS_URL", "应以 redis:// 或 rediss:// 开头", "must start with redis://"
        )
    if not 1 <= s.port <= 65535:
        raise SettingsError("XINDAI_PORT", "应在 1–65535 之间", "must be between 1 and 65535")
    if s.db_pool_size < 1:
        raise SettingsError("XINDAI_DB_POOL_SIZE", "至少为 1", "must be at least 1")
    for name in ("event_ack_seconds", "relay_poll_ms", "scheduler_tick_seconds"):
        if getattr(s, name) < 1:
            raise SettingsError(_env_name(name), "至少为 1", "must be at least 1")
    if not 1 <= s.webhook_attempts <= 100:
        raise SettingsError("XINDAI_WEBHOOK_ATTEMPTS", "应在 1–100 之间", "must be between 1 and 100")
    if not 1 <= s.idempotency_ttl_hours <= 24 * 90:
        raise SettingsError("XINDAI_IDEMPOTENCY_TTL_HOURS", "应在 1–2160 小时（90 天）之间",
                            "must be between 1 and 2160 hours (90 days)")
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            "XINDAI_TIMEZONE", f"未知时区 {s.timezone!r}", f"unknown time zone {s.timezone!r}"
        ) from None
    if s.profile == "saas" and s.is_sqlite:
        raise SettingsError(
            "XINDAI_DATABASE_URL",
            "SaaS 模式必须使用 PostgreSQL（行级安全隔离租户）",
            "the saas profile requires PostgreSQL (row-level security isolates tenants)",
        )
    if s.profile == "saas" and not s.redis_url:
        raise SettingsError(
            "XINDAI_REDIS_URL", "SaaS 模式必须配置 Redis", "the saas profile requires Redis"
        )
    if not 1024 <= s.document_max_bytes <= MAX_DOCUMENT_BYTES:
        raise SettingsError(
            "XINDAI_DOCUMENT_MAX_BYTES", f"应在 1024 到 {MAX_DOCUMENT_BYTES} 字节之间",
            f"must be between 1024 and {MAX_DOCUMENT_BYTES} bytes",
        )
    if s.key_file == Path(""):
        s = replace(s, key_file=s.data_dir / "master.key")
    if s.audit_key_file == Path(""):
        s = replace(s, audit_key_file=s.data_dir / "audit-signing.key")
    if s.document_dir == Path(""):
        s = replace(s, document_dir=s.data_dir / "documents")
    return s
