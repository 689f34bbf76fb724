"""The one way opsconsole opens an AWS session: botocore's own chain, region included.

The region is the inventory's ``aws.region``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
else the profile's (``~/.aws/config``), as the AWS CLI resolves it; none of them is a
one-line error naming ``aws.region``.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from ..errors import UserError


class AwsSettings(Protocol):
    region: str | None
    profile: str | None
    endpoint_url: str | None


def region_of(aws: AwsSettings) -> str:
    if aws.region:
        return aws.region
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(var, "").strip():
            return os.environ[var].strip()
    import botocore.exceptions
    import botocore.session

    try:
        region = botocore.session.Session(profile=aws.profile).get_config_variable("region")
    except botocore.exceptions.ProfileNotFound:
        raise UserError(f"aws.profile: profile {aws.profile!r} not found in the AWS config"
                        ) from None
    if not region:
        profile = f"profile {aws.profile!r}" if aws.profile else "default profile"
        raise UserError("aws.region: not set, and neither AWS_REGION, AWS_DEFAULT_REGION nor "
                        f"the {profile} gives one")
    return region


def aws_session(aws: AwsSettings, credentials: dict[str, str] | None = None) -> Any:
    """An ``aioboto3.Session`` for ``aws`` (``credentials``: explicit keys, e.g. the lab's)."""
    import aioboto3

    return aioboto3.Session(profile_name=aws.profile, region_name=region_of(aws),
                            **(credentials or {}))
