"""The users and serve commands of pipeline.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner
from review_client import ROOT

import pipeline
from storage import Store
from storage.accounts import Accounts
from web.passwords import verify_password

PASSWORD = "a long enough password"
ADD_LEAD = ("users", "add", "li", "--role", "lead")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage"] = {"url": f"sqlite:///{tmp_path / 'fenghuo.db'}"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run_cli(config_path: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(
        pipeline.cli, ["--config", str(config_path), *args], input=input
    )


def read_accounts(config_path: Path) -> tuple[Store, Accounts]:
    store = Store(f"sqlite:///{config_path.parent / 'fenghuo.db'}")
    return store, Accounts(store.engine)


def test_users_add_from_stdin(config_path: Path) -> None:
    result = run_cli(
        config_path,
        "users",
        "add",
        "wang",
        "--role",
        "analyst",
        "--display-name",
        "王丽",
        "--password-stdin",
        input=PASSWORD + "\n",
    )

    assert result.exit_code == 0, result.output
    assert "added analyst wang" in result.output
    store, accounts = read_accounts(config_path)
    with store:
        user = accounts.find_user("wang")
        assert user.display_name == "王丽"
        assert user.role == "analyst"
        assert user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, PASSWORD)
        [entry] = accounts.audit_entries(10)
        assert entry.action == "user.add"
        assert entry.details == {"role": "analyst", "via": "command line"}


def test_users_add_prompts_twice(config_path: Path) -> None:
    result = run_cli(config_path, *ADD_LEAD, input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert result.output.count("Password") == 1
    assert "Repeat for confirmation" in result.output


def test_users_add_prompt_mismatch(config_path: Path) -> None:
    answers = [PASSWORD, "something else entirely", PASSWORD, PASSWORD]
    result = run_cli(config_path, *ADD_LEAD, input="\n".join(answers) + "\n")

    assert result.exit_code == 0, result.output
    assert "do not match" in result.output


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["Wang", "--role", "viewer"], PASSWORD, "invalid user name"),
        (["wang", "--role", "admin"], PASSWORD, "Invalid value for '--role'"),
        (["wang", "--role", "viewer"], "short", "password too short"),
        (["wang", "--role", "viewer"], "", "password too short"),
        (["wang", "--role", "viewer"], " " * 12, "only white space"),
        (["wang", "--role", "viewer"], "\t \u3000" * 5, "only white space"),
    ],
)
def test_users_add_rejects(config_path: Path, args, password, message) -> None:
    result = run_cli(
        config_path,
        "users",
        "add",
        *args,
        "--password-stdin",
        input=password + "\n",
    )

    assert result.exit_code == 2
    assert message in result.output


def test_users_passwd_rejects_blank(config_path: Path) -> None:
    add = ["users", "add", "wang", "--role", "viewer", "--password-stdin"]
    assert run_cli(config_path, *add, input=PASSWORD + "\n").exit_code == 0

    result = run_cli(
        config_path, "users", "passwd", "wang", "--password-stdin", input=" " * 16
    )

    assert result.exit_code == 2
    assert "only white space" in result.output


def test_users_add_twice(config_path: Path) -> None:
    for _ in range(2):
        result = run_cli(
            config_path,
            "users",
            "add",
            "wang",
            "--role",
            "viewer",
            "--password-stdin",
            input=PASSWORD + "\n",
        )

    assert result.exit_code == 1
    assert "user 'wang' already exists" in result.output


def test_users_lifecycle(config_path: Path) -> None:
    add = ["users", "add", "wang", "--role", "viewer", "--password-stdin"]
    assert run_cli(config_path, *add, input=PASSWORD + "\n").exit_code == 0

    new_password = "another long password"
    changed = run_cli(
        config_path, "users", "passwd", "wang", "--password-stdin", input=new_password
    )
    disabled = run_cli(config_path, "users", "disable", "wang")
    listed = run_cli(config_path, "users", "list")
    enabled = run_cli(config_path, "users", "enable", "wang")
    removed = run_cli(config_path, "users", "remove", "wang")
    empty = run_cli(config_path, "users", "list")

    assert changed.exit_code == 0, changed.output
    assert "password of wang changed" in changed.output
    assert disabled.exit_code == 0
    assert "wang" in listed.output
    assert "disabled" in listed.output
    assert enabled.exit_code == 0
    assert removed.exit_code == 0
    assert "no users yet" in empty.output
    store, accounts = read_accounts(config_path)
    with store:
        actions = [entry.action for entry in reversed(accounts.audit_entries(10))]
    assert actions == [
        "user.add",
        "user.passwd",
        "user.disable",
        "user.enable",
        "user.remove",
    ]


@pytest.mark.parametrize("command", ["remove", "disable", "enable"])
def test_users_unknown_name(config_path: Path, command: str) -> None:
    result = run_cli(config_path, "users", command, "nobody")

    assert result.exit_code == 1
    assert "no user named 'nobody'" in result.output


def test_users_config_after_subcommand(config_path: Path) -> None:
    result = CliRunner().invoke(
        pipeline.cli, ["users", "list", "--config", str(config_path)]
    )

    assert result.exit_code == 0, result.output
    assert "no users yet" in result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_and_stops(config_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "pipeline.py",
            "serve",
            "--config",
            str(config_path),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        response = wait_for(f"http://127.0.0.1:{port}/")
        assert response.status_code == 302
        assert response.headers["Location"] == "/login?next=/"
        assert response.headers["Server"] == "fenghuo"
        login = httpx.get(f"http://127.0.0.1:{port}/login", trust_env=False)
        assert "登录烽火" in login.text
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)

    assert server.returncode == 0, output
    assert f"review page on http://127.0.0.1:{port}/" in output


def wait_for(url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, trust_env=False)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
