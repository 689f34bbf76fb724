"""Every environment knob opsconsole reads, in one place (pydantic-settings).

The variable names are contracts (scripts, CI and the lab's own children set them):
``OPSCONSOLE_<FIELD>``, plus the XDG base directories. :func:`settings` reads the
environment each time it is called, never once at import, so whatever the environment is
when a value is needed (a test's monkeypatch, a child's env) is what is used.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import UserError

ENV_PREFIX = "OPSCONSOLE_"


class SettingsError(UserError):
    """An environment variable holds a value opsconsole cannot use (exit 2)."""


class Settings(BaseSettings):
    """The environment, validated. An empty variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True,
                                      extra="ignore", frozen=True)

    state_dir: Path | None = None
    """OPSCONSOLE_STATE_DIR: fault ledger and signing key (default $XDG_STATE_HOME/opsconsole)."""
    lab_dir: Path | None = None
    """OPSCONSOLE_LAB_DIR: the lab's state dir when --state-dir is not given."""
    nats_server: Path | None = None
    """OPSCONSOLE_NATS_SERVER: a nats-server binary instead of the lab extra's."""
    bao: Path | None = None
    """OPSCONSOLE_BAO: a bao (OpenBao) binary instead of the lab extra's."""
    lab_pause_s: float = Field(5.0, gt=0, allow_inf_nan=False)
    """OPSCONSOLE_LAB_PAUSE_S: how long lab.nats-node-pause holds its SIGSTOP."""
    keymap: Path | None = None
    """OPSCONSOLE_KEYMAP: the console's keymap file (default $XDG_CONFIG_HOME/opsconsole/...)."""
    config: Path | None = None
    """OPSCONSOLE_CONFIG: the inventory when --config is not given; it must exist."""
    xdg_state_home: Path | None = Field(None, validation_alias="XDG_STATE_HOME")
    xdg_config_home: Path | None = Field(None, validation_alias="XDG_CONFIG_HOME")

    @property
    def user_state_dir(self) -> Path:
        """Where the fault ledger and the signing key live (not created here)."""
        if self.state_dir is not None:
            return self.state_dir.expanduser()
        base = self.xdg_state_home or Path("~/.local/state")
        return base.expanduser() / "opsconsole"

    @property
    def user_config_dir(self) -> Path:
        """``$XDG_CONFIG_HOME/opsconsole`` (default ``~/.config/opsconsole``)."""
        return (self.xdg_config_home or Path("~/.config")).expanduser() / "opsconsole"

    @property
    def keymap_file(self) -> Path:
        """The console's keymap; it need not exist (then every key is the default)."""
        if self.keymap is not None:
            return self.keymap.expanduser()
        return self.user_config_dir / "keymap.toml"

    @property
    def user_config_file(self) -> Path:
        """The user's inventory, used when it exists and neither --config nor
        OPSCONSOLE_CONFIG names one (``$XDG_CONFIG_HOME/opsconsole/config.toml``)."""
        return self.user_config_dir / "config.toml"


def env_name(field: str) -> str:
    """The environment variable behind a :class:`Settings` field."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


def settings() -> Settings:
    """The settings from the current environment; a bad value is a one-line SettingsError."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            name = env_name(field) if field in Settings.model_fields else field
            problems.append(f"environment variable {name}={err.get('input')!r}: "
                            f"{err['msg'][0].lower()}{err['msg'][1:]}")
        raise SettingsError("; ".join(problems)) from None
