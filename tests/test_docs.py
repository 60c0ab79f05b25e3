"""Every setting is documented once in the README's table and in the example env file."""

from pathlib import Path

from docent.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    example = (REPO / "env" / "backend" / "local.env.example").read_text()
    for name in Settings.model_fields:
        variable = name.upper()
        assert f"`{variable}`" in readme, f"{variable} is missing from the README's configuration table"
        assert f"{variable}=" in example, f"{variable} is missing from env/backend/local.env.example"
