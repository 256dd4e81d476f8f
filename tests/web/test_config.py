"""The web section of config.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from review_client import ROOT

import config as config_module
from config import ConfigError


def load_with_web(tmp_path: Path, web: dict) -> config_module.Config:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["web"] = web
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return config_module.load(path)


def test_web_defaults(tmp_path: Path) -> None:
    web = load_with_web(tmp_path, {}).web

    assert web.host == "127.0.0.1"
    assert web.port == 8000
    assert web.session_hours == 12.0
    assert web.secure_cookies == "auto"
    assert web.behind_proxy is False


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_secure_cookies_values(tmp_path: Path, value) -> None:
    web = load_with_web(tmp_path, {"secure_cookies": value}).web

    assert web.secure_cookies == value
    assert type(web.secure_cookies) is type(value)


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        ({"port": 0}, "web.port: expected a TCP port from 1 to 65535; got 0"),
        ({"port": 70000}, "web.port: expected a TCP port"),
        ({"port": "http"}, "web.port: expected a whole number"),
        ({"host": ""}, "web.host: expected an address"),
        ({"host": "0.0.0.0 "}, "web.host: expected an address"),
        ({"session_hours": 0}, "web.session_hours: expected a positive number"),
        ({"session_hours": 721}, "web.session_hours: expected a positive number"),
        ({"secure_cookies": 1}, "web.secure_cookies: expected auto, true or false"),
        ({"secure_cookies": "yes"}, "web.secure_cookies: expected one of auto"),
        ({"behind_proxy": "yes"}, "web.behind_proxy: expected true or false"),
        ({"bind": "x"}, "web.bind: unknown key"),
    ],
)
def test_bad_web_section(tmp_path: Path, web: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with_web(tmp_path, web)

    assert expected in str(caught.value)
