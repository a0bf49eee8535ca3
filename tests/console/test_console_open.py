"""The console with auth off (development, no tokens): open, and saying so on every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.console.session import SECRET_FILE, instance_secret

WARNING = "Access control is off."


@pytest.mark.parametrize(
    "path",
    ["/console/", "/console/syncs", "/console/patient", "/console/analytics", "/console/sign-in"],
)
def test_console_without_tokens_is_open_with_a_warning(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert WARNING in response.get_data(as_text=True)


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = instance_secret(str(tmp_path))
    assert len(first) == 64
    assert instance_secret(str(tmp_path)) == first
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o077 == 0


def test_a_configured_secret_key_is_used_as_is(tmp_path: Path) -> None:
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.db", "SECRET_KEY": "configured-secret"}
    )
    assert app.config["SECRET_KEY"] == "configured-secret"
