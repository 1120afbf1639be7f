"""Settings of the session's app changed for one test."""

from stspolicy.config import build_settings


def configure(monkeypatch, app, **values) -> None:
    """For one test, `app` as if built with these config `values`: its typed settings are built again from them."""
    for name, value in values.items():
        monkeypatch.setitem(app.config, name, value)
    monkeypatch.setitem(app.extensions, "settings", build_settings(app.config))
