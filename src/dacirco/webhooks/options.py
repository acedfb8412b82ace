"""The webhook section of a service's options."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from dacirco.webhooks.addresses import check_url


class WebhookOptions(BaseModel):
    """Where and how webhooks are delivered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Declared before `url`, whose check depends on it.
    allow_private: bool = Field(
        default=False,
        description="deliver to loopback, private and link-local addresses too (receivers on "
        "this machine or network); refused otherwise, as given and as resolved",
    )
    url: str | None = Field(
        default=None,
        description="a service-wide http(s) URL that gets every job's changes as signed "
        "webhooks (`--webhook URL`), besides each job's own `callback_url`",
    )
    secret: str | None = Field(
        default=None,
        description="the HMAC-SHA256 key deliveries are signed with; none: a random one kept "
        "in <data dir>/webhook-secret (mode 0600), created once",
        repr=False,
    )
    give_up_after: float = Field(
        default=86400.0,
        gt=0,
        description="seconds after a change past which its delivery is given up",
    )
    progress_interval: float = Field(
        default=10.0,
        gt=0,
        description="at most one progress webhook per job in this many seconds (best effort, "
        "not retried)",
    )
    timeout: float = Field(
        default=10.0, gt=0, description="seconds one delivery attempt may take, all included"
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return check_url(value, bool(info.data.get("allow_private", False)))
