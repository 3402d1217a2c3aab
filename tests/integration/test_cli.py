"""The `xindai` command as a user runs it: real subprocesses on a fresh data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES, ROOT, SMALL_PACK

XINDAI = [str(Path(sys.executable).parent / "xindai")]  # the installed entry point


def run(args: list[str], data_dir: Path, stdin: str | None = None,
        **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    clean.update({"XINDAI_DATA_DIR": str(data_dir),
                  "PYTHONPATH": os.pathsep.join([str(ROOT), str(FIXTURES / "external")]),
                  **env})
    return subprocess.run([*XINDAI, *args], cwd=data_dir, env=clean, capture_output=True,
                          text=True, timeout=120, input=stdin)


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found.extend(all_commands(cmd, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


def test_every_subcommand_has_help() -> None:
    from core.cli import cli

    commands = all_commands(cli)
    assert ("tenant", "create") in commands and ("migrate",) in commands
    for path in commands:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_migrate_create_list_export_plugins(tmp_path: Path) -> None:
    first = run(["migrate"], tmp_path)
    assert first.returncode == 0, first.stderr
    shipped = len([p for folder in ROOT.glob("**/migrations") if ".venv" not in folder.parts
                   for p in folder.glob("*_20*.py")])
    assert f"applied {shipped} migrations" in first.stdout and "crm:" in first.stdout
    again = run(["migrate"], tmp_path)
    assert again.returncode == 0 and "applied 0 migrations" in again.stdout
    created = run(["tenant", "create", "--pack", str(SMALL_PACK)], tmp_path)
    assert created.returncode == 0, created.stderr
    assert "created tenant small" in created.stdout
    listed = run(["tenant", "list"], tmp_path)
    assert listed.stdout.startswith("small\tactive\t测试小贷\tcrm")
    plugins = run(["plugins"], tmp_path)
    assert "example 0.3.1 (external)" in plugins.stdout
    assert "crm 0.1.0 (built-in)" in plugins.stdout
    crm_block = plugins.stdout.split("crm 0.1.0")[1]
    assert "register_entities" in crm_block and "tenants: small" in crm_block
    enabled = run(["tenant", "enable-plugin", "small", "example"], tmp_path)
    assert enabled.returncode == 0
    assert "tenants: small" in run(["plugins"], tmp_path).stdout.split("example 0.3.1")[1]
    exported = run(["tenant", "export", "--tenant", "small", "--out", "out"], tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out" / "pack.yaml").is_file()
    assert "personal data" in exported.stderr
    sealed = run(["tenant", "set-secret", "small", "origination.bureau_secret"], tmp_path,
                 stdin="cli-secret-value\n")
    assert sealed.returncode == 0 and "sealed" in sealed.stdout, sealed.stderr
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("xindai.sqlite3*"))
    assert b'"sealed"' in stored and b"cli-secret-value" not in stored  # sealed at rest
    refused = run(["tenant", "set-secret", "small", "session_hours"], tmp_path, stdin="x")
    assert refused.returncode != 0 and "不是已声明的保密配置项" in refused.stderr
    assert run(["tenant", "set-status", "small", "suspended"], tmp_path).returncode == 0
    assert "small\tsuspended" in run(["tenant", "list"], tmp_path).stdout
    hello = run(["example-hello"], tmp_path)
    assert hello.stdout.strip() == "hello from example"


@pytest.mark.parametrize("env,name", [
    ({"XINDAI_PORT": "abc"}, "XINDAI_PORT"),
    ({"XINDAI_DATABASE_URL": "mysql://x/y"}, "XINDAI_DATABASE_URL"),
    ({"XINDAI_PROFILE": "saas"}, "XINDAI_DATABASE_URL"),
    ({"XINDAI_COLOUR": "blue"}, "XINDAI_COLOUR"),
    ({"XINDAI_PLUGINS": "crm,ghost"}, "ghost"),
])
def test_bad_settings_stop_with_one_line(tmp_path: Path, env: dict[str, str], name: str) -> None:
    result = run(["migrate"], tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], result.stderr
    assert not (tmp_path / "xindai.sqlite3").exists()


def test_broken_pack_fails_with_location(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pack.yaml").write_text("format: 1\ntenant:\n  slug: x1\n  name: [unclosed\n",
                                   encoding="utf-8")
    result = run(["tenant", "create", "--pack", str(bad)], tmp_path)
    assert result.returncode == 1
    assert "pack.yaml:" in result.stderr and "YAML" in result.stderr
    missing = run(["tenant", "export", "--tenant", "nobody", "--out", "o"], tmp_path)
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_audit_verify_command(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0
    assert run(["tenant", "create", "--pack", str(SMALL_PACK)], tmp_path).returncode == 0
    ok = run(["audit", "verify", "--tenant", "small"], tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ") and "chain intact" in ok.stdout
    import sqlite3

    db = sqlite3.connect(tmp_path / "xindai.sqlite3")
    db.execute("DROP TRIGGER audit_entry_no_update")
    db.execute("UPDATE audit_entry SET action = 'forged' WHERE seq = 3")
    db.commit()
    db.close()
    broken = run(["audit", "verify", "--tenant", "small"], tmp_path)
    assert broken.returncode == 1 and "broken at entry 3: changed" in broken.stdout


def test_audit_export_and_standalone_verify(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0
    assert run(["tenant", "create", "--pack", str(SMALL_PACK)], tmp_path).returncode == 0
    made = run(["audit", "export", "--tenant", "small", "--out", "audit.zip"], tmp_path)
    assert made.returncode == 0, made.stderr
    assert oct((tmp_path / "audit.zip").stat().st_mode & 0o777) == "0o600"
    elsewhere = tmp_path / "auditor"  # another machine: no database, no settings
    elsewhere.mkdir()
    ok = run(["audit", "verify", str(tmp_path / "audit.zip")], elsewhere)
    assert ok.returncode == 0 and "chain intact" in ok.stdout
    assert not (elsewhere / "xindai.sqlite3").exists()
    import zipfile

    src = zipfile.ZipFile(tmp_path / "audit.zip")
    with zipfile.ZipFile(tmp_path / "forged.zip", "w") as dst:
        for name in src.namelist():
            body = src.read(name)
            if name == "entries.jsonl":
                body = body.replace(b'"action": "create"', b'"action": "nothing"', 1)
                assert b'nothing' in body
            dst.writestr(name, body)
    bad = run(["audit", "verify", str(tmp_path / "forged.zip")], elsewhere)
    assert bad.returncode == 1 and "broken at entry" in bad.stdout and "changed" in bad.stdout
    standalone_verify(tmp_path / "audit.zip", tmp_path / "laptop")


def standalone_verify(export: Path, laptop: Path) -> None:
    """An auditor's computer: no XINDAI_* at all, or settings that would stop the product
    (a bad xindai.toml here, a saas profile without PostgreSQL, an unknown plugin); the
    verifier reads none of them, and leaves no data directory or key file behind."""
    laptop.mkdir()
    bare = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    bare.update(PYTHONPATH=str(ROOT), HOME=str(laptop))

    def verify(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*XINDAI, "audit", "verify", str(export)], cwd=laptop,
                              env={**bare, **env}, capture_output=True, text=True, timeout=120)

    clean = verify()
    assert clean.returncode == 0 and "chain intact" in clean.stdout, clean.stderr
    (laptop / "xindai.toml").write_text("colour = 'blue'\n", encoding="utf-8")
    hostile = verify(XINDAI_PROFILE="saas", XINDAI_PLUGINS="crm,ghost", XINDAI_PORT="abc")
    assert hostile.returncode == 0 and "chain intact" in hostile.stdout, hostile.stderr
    assert sorted(p.name for p in laptop.iterdir()) == ["xindai.toml"]
    product = subprocess.run([*XINDAI, "audit", "verify", "--tenant", "small"], cwd=laptop,
                             env=bare, capture_output=True, text=True, timeout=120)
    assert product.returncode == 2 and "colour" in product.stderr  # the live check reads them
