"""``aws.throttle``: a fraction of one service's AWS calls answered with its real throttling
error by the HTTP fault proxy in front of the AWS endpoint (``[aws] fault_proxy_url``, its
control API; the lab sets it), for a window or until healed.

The proxy can only sit in front of an endpoint the clients are pointed at by URL (moto,
LocalStack, an endpoint proxy of your own): real AWS endpoints are TLS to AWS, so without
the key there the kind is not available, and :func:`throttle_available` says why.
"""

from __future__ import annotations

from pydantic import Field, PositiveFloat

from ...errors import UserError
from ...faults.kinds import FaultContext, FaultKind, FaultParams, StrictHealSpec
from ...netproxy.throttle_stats import (  # the readings, shared with the previews pack
    KIND,
    control_call,
    proxy_stats,
    throttle_available,
)

TARGET = "aws"  # the AWS endpoint of the inventory (the proxy in front of it)


class ThrottleParams(FaultParams):
    #: a service as boto3 names it (dynamodb, sqs, cloudwatch, …) or as SigV4 signs it
    #: (its credential scope: monitoring for cloudwatch); * for every service
    service: str = Field(default="dynamodb", pattern=r"^(\*|[a-z0-9][a-z0-9-]{0,62})$")
    fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    #: seconds the throttle lasts (the proxy ends it by itself); unset: until healed
    window_s: PositiveFloat | None = None


class ThrottleHeal(StrictHealSpec):
    proxy_url: str
    service: str


def signing_name(service: str) -> str:
    """The SigV4 name the proxy sees for a service boto3 knows (``cloudwatch`` →
    ``monitoring``); anything else (``*``, a name botocore lacks) unchanged."""
    if service == "*":
        return service
    import botocore.exceptions
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except botocore.exceptions.UnknownServiceError:
        return service
    return model.signing_name or service


class AwsThrottle(FaultKind):
    id = KIND
    title = ("throttle a fraction of one AWS service's calls (the real throttling error, "
             "via the HTTP fault proxy in front of the endpoint)")
    Params = ThrottleParams
    Heal = ThrottleHeal

    def targets(self, ctx: FaultContext) -> list[str]:
        return [TARGET]

    async def prepare(self, ctx, target, params):
        reason = throttle_available(ctx.inventory)
        if reason:
            raise UserError(f"{self.id}: not available here: {reason}", exit_code=2)
        url = ctx.inventory.aws.fault_proxy_url  # type: ignore[union-attr]
        await proxy_stats(ctx.http, url)  # reachable before anything is recorded
        return {"proxy_url": url.rstrip("/"), "service": signing_name(params["service"])}

    async def inject(self, ctx, target, params, heal):
        await control_call(ctx.http, "PUT", heal["proxy_url"], f"/aws/throttle/{heal['service']}",
                    {"fraction": params["fraction"], "window_s": params.get("window_s")})

    async def heal(self, ctx, spec):
        try:
            await control_call(ctx.http, "DELETE", spec["proxy_url"],
                               f"/aws/throttle/{spec['service']}")
        except UserError as exc:
            if "unreachable" in str(exc):
                return "the fault proxy is gone (lab down): nothing to heal"
            raise
        return f"stopped throttling {spec['service']}"
