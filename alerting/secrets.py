"""Secrets (tokens, signing keys, passwords) from the environment or a file, never the config.

A :class:`SecretSource` names where the secret is (``env: SLACK_BOT_TOKEN``
or ``file: /run/secrets/slack``); the value itself never appears in the
configuration, in logs or in error messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self, overload

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator


class SecretSource(BaseModel):
    """Where to read one secret: an environment variable or a file (exactly one).

    Examples
    --------
    >>> import os
    >>> os.environ["DOC_SECRET"] = "s3cret"
    >>> SecretSource(env="DOC_SECRET").read()
    SecretStr('**********')
    >>> SecretSource(env="DOC_SECRET").read().get_secret_value()
    's3cret'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> Self:
        """``env`` or ``file``, not both, not neither."""
        if (self.env is None) == (self.file is None):
            raise ValueError("set exactly one of env (a variable name) or file (a path)")
        return self

    def describe(self) -> str:
        """Where the secret comes from, for messages (never the value)."""
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def read(self) -> SecretStr:
        """The secret, stripped of surrounding whitespace.

        Raises
        ------
        ValueError
            The variable is unset or empty, or the file is missing or empty.
        """
        if self.env is not None:
            value = os.environ.get(self.env, "")
        else:
            assert self.file is not None
            try:
                value = self.file.read_text()
            except OSError as error:
                raise ValueError(f"cannot read {self.describe()}: {error.strerror}") from None
        value = value.strip()
        if not value:
            raise ValueError(f"{self.describe()} is unset or empty")
        return SecretStr(value)


@overload
def read_secret(owner: str, field: str, source: SecretSource) -> str: ...
@overload
def read_secret(owner: str, field: str, source: None) -> None: ...
@overload
def read_secret(owner: str, field: str, source: SecretSource | None) -> str | None: ...
def read_secret(owner: str, field: str, source: SecretSource | None) -> str | None:
    """The secret's value (``None`` when not configured) for a sink being built.

    Raises
    ------
    ValueError
        ``"{owner}: {field}: ..."``, naming where the secret was looked for,
        never its value.

    Examples
    --------
    >>> read_secret("sink 'retrain'", "secret", SecretSource(env="DOC_UNSET"))
    Traceback (most recent call last):
    ...
    ValueError: sink 'retrain': secret: environment variable DOC_UNSET is unset or empty
    """
    if source is None:
        return None
    try:
        return source.read().get_secret_value()
    except ValueError as error:
        raise ValueError(f"{owner}: {field}: {error}") from None
