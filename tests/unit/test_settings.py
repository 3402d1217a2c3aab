"""Unit tests for core.settings.load_settings (env > TOML > default, one-line errors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.settings import Settings, SettingsError, load_settings

CJK = re.compile(r"[\u4e00-\u9fff]")
PG = "postgresql://app:pw@db:5432/xindai"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Run in an empty directory so no stray ./xindai.toml is read."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings_error(environ: dict[str, str]) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        load_settings(environ=environ)
    return info.value


def assert_operator_line(err: SettingsError, name: str) -> str:
    """str() is one line, names the setting, and has both Chinese and English text."""
    text = str(err)
    assert "\n" not in text and "\r" not in text, text
    assert name in text, text
    assert CJK.search(text), text
    assert "invalid setting" in text, text
    return text


def write_toml(path: Path, body: str) -> str:
    path.write_text(body, encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- defaults


class TestDefaults:
    def test_defaults(self):
        s = load_settings(environ={})
        assert isinstance(s, Settings)
        assert s.database_url == "sqlite:///var/xindai.sqlite3"
        assert s.is_sqlite and not s.is_postgres
        assert s.sqlite_path == Path("var/xindai.sqlite3")
        assert s.data_dir == Path("var")
        assert s.key_file == Path("var/master.key")
        assert s.redis_url == ""  # embedded in-process jobs
        assert s.profile == "embedded"
        assert s.host == "127.0.0.1"
        assert s.port == 8000
        assert s.locale == "zh-CN"
        assert s.timezone == "Asia/Shanghai"
        assert s.plugins == () and s.disable_plugins == ()
        assert s.db_pool_size == 10
        assert s.log_level == "info"

    def test_explicit_environ_ignores_process_environment(self, monkeypatch):
        monkeypatch.setenv("XINDAI_PORT", "1234")
        monkeypatch.setenv("XINDAI_FOO", "x")
        assert load_settings(environ={}).port == 8000

    def test_non_xindai_variables_ignored(self):
        assert load_settings(environ={"PATH": "/bin", "HOME": "/root", "XINDAIX": "1"}).port == 8000

    def test_data_dir_drives_sqlite_and_key_file(self):
        s = load_settings(environ={"XINDAI_DATA_DIR": "/srv/xindai"})
        assert s.database_url == "sqlite:////srv/xindai/xindai.sqlite3"
        assert s.sqlite_path == Path("/srv/xindai/xindai.sqlite3")
        assert s.key_file == Path("/srv/xindai/master.key")

    def test_documents_under_the_data_dir_up_to_20_mib(self):
        s = load_settings(environ={"XINDAI_DATA_DIR": "/srv/xindai"})
        assert s.document_dir == Path("/srv/xindai/documents")
        assert s.document_max_bytes == 20 * 1024 * 1024
        s = load_settings(environ={"XINDAI_DOCUMENT_DIR": "/mnt/nfs/docs",
                                   "XINDAI_DOCUMENT_MAX_BYTES": "5242880"})
        assert s.document_dir == Path("/mnt/nfs/docs") and s.document_max_bytes == 5 * 1024 * 1024

    @pytest.mark.parametrize("value", ["0", "1023", str(2 * 1024 ** 3), "-5"])
    def test_document_limit_out_of_range(self, value):
        err = settings_error({"XINDAI_DOCUMENT_MAX_BYTES": value})
        assert_operator_line(err, "XINDAI_DOCUMENT_MAX_BYTES")

    def test_explicit_key_file_kept(self):
        s = load_settings(environ={"XINDAI_KEY_FILE": "/etc/xindai/key"})
        assert s.key_file == Path("/etc/xindai/key")

    def test_master_key_not_in_repr(self):
        s = load_settings(environ={"XINDAI_MASTER_KEY": "c2VjcmV0LXNlY3JldA=="})
        assert s.master_key == "c2VjcmV0LXNlY3JldA=="
        assert "c2VjcmV0" not in repr(s)


# --------------------------------------------------------------------------- env values


class TestEnvValues:
    def test_port(self):
        assert load_settings(environ={"XINDAI_PORT": "9000"}).port == 9000

    def test_locale_en(self):
        assert load_settings(environ={"XINDAI_LOCALE": "en"}).locale == "en"

    def test_timezone(self):
        assert load_settings(environ={"XINDAI_TIMEZONE": "UTC"}).timezone == "UTC"

    def test_postgres_url(self):
        s = load_settings(environ={"XINDAI_DATABASE_URL": PG})
        assert s.is_postgres and not s.is_sqlite

    def test_plugins_list(self):
        s = load_settings(environ={"XINDAI_PLUGINS": "crm, x"})
        assert s.plugins == ("crm", "x")

    def test_plugins_list_ignores_empty_parts(self):
        s = load_settings(environ={"XINDAI_DISABLE_PLUGINS": " ,crm,, sms , "})
        assert s.disable_plugins == ("crm", "sms")

    def test_saas_with_postgres_and_redis(self):
        s = load_settings(
            environ={
                "XINDAI_PROFILE": "saas",
                "XINDAI_DATABASE_URL": PG,
                "XINDAI_REDIS_URL": "redis://cache:6379/0",
            }
        )
        assert s.profile == "saas"
        assert s.redis_url == "redis://cache:6379/0"

    def test_onprem_with_sqlite_allowed(self):
        assert load_settings(environ={"XINDAI_PROFILE": "onprem"}).profile == "onprem"


# --------------------------------------------------------------------------- env errors


class TestEnvErrors:
    def test_port_not_a_number(self):
        err = settings_error({"XINDAI_PORT": "abc"})
        assert err.name == "XINDAI_PORT"
        text = assert_operator_line(err, "XINDAI_PORT")
        assert "abc" in text

    def test_port_with_newline_still_one_line(self):
        err = settings_error({"XINDAI_PORT": "80\n80"})
        assert_operator_line(err, "XINDAI_PORT")

    @pytest.mark.parametrize("port", ["0", "65536", "-1"])
    def test_port_out_of_range(self, port):
        assert_operator_line(settings_error({"XINDAI_PORT": port}), "XINDAI_PORT")

    @pytest.mark.parametrize("port", ["1", "65535"])
    def test_port_range_edges(self, port):
        assert load_settings(environ={"XINDAI_PORT": port}).port == int(port)

    @pytest.mark.parametrize("url", ["mysql://x", "http://db", "postgresql+asyncpg://db/x"])
    def test_database_url_scheme(self, url):
        err = settings_error({"XINDAI_DATABASE_URL": url})
        assert err.name == "XINDAI_DATABASE_URL"
        assert_operator_line(err, "XINDAI_DATABASE_URL")

    def test_sqlite_url_needs_three_slashes(self):
        err = settings_error({"XINDAI_DATABASE_URL": "sqlite://var/x.db"})
        assert err.name == "XINDAI_DATABASE_URL"

    def test_migrate_database_url_scheme(self):
        err = settings_error({"XINDAI_MIGRATE_DATABASE_URL": "mysql://x"})
        assert_operator_line(err, "XINDAI_MIGRATE_DATABASE_URL")

    def test_redis_url_scheme(self):
        err = settings_error({"XINDAI_REDIS_URL": "http://cache"})
        assert_operator_line(err, "XINDAI_REDIS_URL")

    def test_unknown_variable(self):
        err = settings_error({"XINDAI_FOO": "1"})
        assert err.name == "XINDAI_FOO"
        assert_operator_line(err, "XINDAI_FOO")

    @pytest.mark.parametrize("tz", ["Mars/Base", "Asia", "", "../../etc/passwd"])
    def test_unknown_timezone(self, tz):
        err = settings_error({"XINDAI_TIMEZONE": tz})
        assert err.name == "XINDAI_TIMEZONE"
        text = assert_operator_line(err, "XINDAI_TIMEZONE")
        if tz:
            assert tz in text

    def test_saas_refuses_default_sqlite(self):
        err = settings_error({"XINDAI_PROFILE": "saas"})
        assert err.name == "XINDAI_DATABASE_URL"
        assert_operator_line(err, "XINDAI_DATABASE_URL")

    def test_saas_refuses_explicit_sqlite(self):
        err = settings_error(
            {
                "XINDAI_PROFILE": "saas",
                "XINDAI_DATABASE_URL": "sqlite:///x.db",
                "XINDAI_REDIS_URL": "redis://r",
            }
        )
        assert err.name == "XINDAI_DATABASE_URL"

    def test_saas_needs_redis(self):
        err = settings_error({"XINDAI_PROFILE": "saas", "XINDAI_DATABASE_URL": PG})
        assert_operator_line(err, "XINDAI_REDIS_URL")

    @pytest.mark.parametrize(
        "name, value",
        [
            ("XINDAI_PROFILE", "cloud"),
            ("XINDAI_LOCALE", "fr"),
            ("XINDAI_LOCALE", "zh"),
            ("XINDAI_LOG_LEVEL", "verbose"),
        ],
    )
    def test_literal_choices(self, name, value):
        err = settings_error({name: value})
        text = assert_operator_line(err, name)
        assert value in text

    @pytest.mark.parametrize("size", ["0", "-3", "many"])
    def test_db_pool_size(self, size):
        assert_operator_line(settings_error({"XINDAI_DB_POOL_SIZE": size}), "XINDAI_DB_POOL_SIZE")

    @pytest.mark.parametrize("hours", ["0", "2161", "a day"])
    def test_idempotency_ttl_bounds(self, hours):
        assert_operator_line(settings_error({"XINDAI_IDEMPOTENCY_TTL_HOURS": hours}),
                             "XINDAI_IDEMPOTENCY_TTL_HOURS")

    def test_idempotency_ttl_default_and_value(self):
        assert load_settings(environ={}).idempotency_ttl_hours == 24
        assert load_settings(environ={"XINDAI_IDEMPOTENCY_TTL_HOURS": "48"}
                             ).idempotency_ttl_hours == 48

    def test_miscased_variable_is_not_silently_ignored(self):
        err = settings_error({"XINDAI_Port": "9000"})
        assert "XINDAI_Port" in str(err)


# --------------------------------------------------------------------------- TOML


class TestToml:
    def test_values_applied(self, tmp_path):
        path = write_toml(
            tmp_path / "conf.toml",
            'port = 9001\nlocale = "en"\nplugins = ["crm", "sms"]\ndata_dir = "/data"\n',
        )
        s = load_settings(environ={"XINDAI_CONFIG": path})
        assert s.port == 9001
        assert s.locale == "en"
        assert s.plugins == ("crm", "sms")
        assert s.data_dir == Path("/data")
        assert s.key_file == Path("/data/master.key")

    def test_xindai_table(self, tmp_path):
        path = write_toml(tmp_path / "conf.toml", '[xindai]\nport = 9002\ntimezone = "UTC"\n')
        s = load_settings(environ={"XINDAI_CONFIG": path})
        assert (s.port, s.timezone) == (9002, "UTC")

    def test_env_overrides_toml(self, tmp_path):
        path = write_toml(tmp_path / "conf.toml", 'port = 9001\nlocale = "en"\n')
        s = load_settings(environ={"XINDAI_CONFIG": path, "XINDAI_PORT": "9100"})
        assert s.port == 9100
        assert s.locale == "en"  # not overridden: still from TOML

    def test_default_file_in_working_directory(self, tmp_path):
        write_toml(tmp_path / "xindai.toml", "port = 9003\n")
        assert load_settings(environ={}).port == 9003

    def test_xindai_config_wins_over_default_file(self, tmp_path):
        write_toml(tmp_path / "xindai.toml", "port = 9003\n")
        other = write_toml(tmp_path / "other.toml", "port = 9004\n")
        assert load_settings(environ={"XINDAI_CONFIG": other}).port == 9004

    def test_unknown_key_named(self, tmp_path):
        path = write_toml(tmp_path / "conf.toml", "port = 9001\ncolour = \"red\"\n")
        err = settings_error({"XINDAI_CONFIG": path})
        assert "colour" in err.name
        assert_operator_line(err, "colour")

    def test_unknown_key_in_default_file_named(self, tmp_path):
        write_toml(tmp_path / "xindai.toml", "prot = 1\n")
        err = settings_error({})
        text = assert_operator_line(err, "prot")
        assert "xindai.toml" in text

    def test_broken_toml_names_file(self, tmp_path):
        path = write_toml(tmp_path / "broken.toml", "port = \n[[[\n")
        err = settings_error({"XINDAI_CONFIG": path})
        assert err.name == "XINDAI_CONFIG"
        text = assert_operator_line(err, "XINDAI_CONFIG")
        assert "broken.toml" in text

    def test_missing_file_names_file(self, tmp_path):
        err = settings_error({"XINDAI_CONFIG": str(tmp_path / "absent.toml")})
        text = assert_operator_line(err, "XINDAI_CONFIG")
        assert "absent.toml" in text

    @pytest.mark.parametrize(
        "body, name",
        [
            ('port = "eighty"\n', "XINDAI_PORT"),
            ("port = true\n", "XINDAI_PORT"),
            ("data_dir = 5\n", "XINDAI_DATA_DIR"),
            ("database_url = 5\n", "XINDAI_DATABASE_URL"),
            ("plugins = [1, 2]\n", "XINDAI_PLUGINS"),
            ('profile = "cloud"\n', "XINDAI_PROFILE"),
        ],
    )
    def test_wrong_types_named(self, tmp_path, body, name):
        path = write_toml(tmp_path / "conf.toml", body)
        err = settings_error({"XINDAI_CONFIG": path})
        assert_operator_line(err, name)

    def test_cross_field_rules_apply_to_toml(self, tmp_path):
        path = write_toml(tmp_path / "conf.toml", 'profile = "saas"\n')
        assert settings_error({"XINDAI_CONFIG": path}).name == "XINDAI_DATABASE_URL"

    def test_float_for_integer_refused(self, tmp_path):
        path = write_toml(tmp_path / "conf.toml", "port = 8000.7\n")
        err = settings_error({"XINDAI_CONFIG": path})
        assert "XINDAI_PORT" in str(err)

    def test_config_pointing_to_directory(self, tmp_path):
        err = settings_error({"XINDAI_CONFIG": str(tmp_path)})
        assert "XINDAI_CONFIG" in str(err)
