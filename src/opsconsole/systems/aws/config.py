"""The ``[aws]`` section: the account and region the EC2 fleet lives in."""

from __future__ import annotations

from pydantic import Field

from ...config_fields import (
    HttpUrl,
    Model,
    Region,
)


class AwsTarget(Model):
    #: unset: AWS_REGION, AWS_DEFAULT_REGION or the profile's region (as the AWS CLI does)
    region: Region | None = None
    profile: str | None = None
    endpoint_url: HttpUrl | None = None
    #: the control API of an opsconsole HTTP fault proxy that endpoint_url goes through
    #: (``python -m opsconsole.netproxy.http``; the lab sets both): enables aws.throttle
    fault_proxy_url: HttpUrl | None = None
    instance_tag_key: str = Field(default="role", min_length=1)
    instance_tag_value: str = "vault-instance"

