"""Target groups and their targets: describe, health, register/deregister in batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from botocore.exceptions import ClientError

from awsctl.aws.clients import Clients
from awsctl.aws.errors import describe_tags, error_code, not_found
from awsctl.planning.targets import Target


class TargetGroupNotFound(LookupError):
    pass


@dataclass(frozen=True)
class TargetGroupInfo:
    arn: str
    name: str
    target_type: str
    vpc_id: str | None
    port: int | None
    ip_address_type: str = "ipv4"
    health_check_interval: int = 30
    healthy_threshold: int = 5


@dataclass(frozen=True)
class TargetHealth:
    target: Target
    state: str
    reason: str | None = None  # TargetHealth.Reason, e.g. Target.NotInUse


LISTING_PAGE = 400  # DescribeTargetGroups' largest page
LISTING_INTERVAL = 30.0  # seconds: at most one listing of every group this often


def _info(tg: dict) -> TargetGroupInfo:
    return TargetGroupInfo(
        arn=tg["TargetGroupArn"],
        name=tg["TargetGroupName"],
        target_type=tg.get("TargetType", "instance"),
        vpc_id=tg.get("VpcId"),
        port=tg.get("Port"),
        ip_address_type=tg.get("IpAddressType") or "ipv4",
        health_check_interval=int(tg.get("HealthCheckIntervalSeconds") or 30),
        healthy_threshold=int(tg.get("HealthyThresholdCount") or 5),
    )


class TargetGroups:
    """Reads are cached: a VPC's CIDRs, and a group's settings until awsctl changes the group itself
    (`forget`: its health check paces the health reads), so a steady state costs no call; a NotFound
    evicts the group under every name it was cached by. A cache miss lists every group
    (400 a page, at most every 30 s) rather than describing one: 200 bindings starting together
    cost one call, not 200."""

    def __init__(self, clients: Clients, clock: Callable[[], float] = time.monotonic):
        self._clients = clients
        self._lock = threading.Lock()
        self._listing = threading.Lock()
        self._listed_at = float("-inf")
        self._groups: dict[str, TargetGroupInfo] = {}
        self._vpc_cidrs: dict[str, tuple[str, ...]] = {}
        self._zonal: dict[str, bool] = {}  # group ARN -> cross-zone load balancing explicitly off
        self._tags: dict[str, dict[str, str]] = {}  # group ARN -> its tags, read once (until `forget`)
        self.clock = clock

    def _cached(self, ref: str) -> TargetGroupInfo | None:
        with self._lock:
            return self._groups.get(ref)

    def _list_all(self) -> None:
        """Fills the cache with every group, one page per 400; concurrent misses share one listing."""
        asked = self.clock()
        with self._listing:
            if self._listed_at >= asked - LISTING_INTERVAL:
                return  # listed while we waited, or recently enough: a miss now means absent or new
            pages = self._clients.elbv2.get_paginator("describe_target_groups").paginate(
                PaginationConfig={"PageSize": LISTING_PAGE}
            )
            found = [_info(tg) for page in pages for tg in page["TargetGroups"]]
            with self._lock:
                for info in found:
                    self._groups[info.arn] = info
                    self._groups[info.name] = info
            self._listed_at = self.clock()

    def describe(self, ref: str) -> TargetGroupInfo:
        """`ref` is an ARN or a name; a deleted group is forgotten so it is looked up again."""
        cached = self._cached(ref)
        if cached:
            return cached
        self._list_all()
        cached = self._cached(ref)
        if cached:
            return cached
        kwargs = {"TargetGroupArns": [ref]} if ref.startswith("arn:") else {"Names": [ref]}
        try:
            groups = self._clients.elbv2.describe_target_groups(**kwargs)["TargetGroups"]
        except ClientError as err:
            if not_found(err, "TargetGroup") or error_code(err) == "ValidationError":
                raise TargetGroupNotFound(ref) from err
            raise
        if not groups:
            raise TargetGroupNotFound(ref)
        info = _info(groups[0])
        with self._lock:
            self._groups[ref] = info
        return info

    def forget(self, ref: str) -> None:
        """Drops every cached name or ARN that points at `ref`'s group: a group re-created under the
        same name (a terraform replace) is then found again by name, with its new ARN."""
        with self._lock:
            gone = self._groups.get(ref)
            for key, info in list(self._groups.items()):
                if key == ref or info.arn == ref or (gone is not None and info.arn == gone.arn):
                    del self._groups[key]
            self._zonal.pop(ref, None)
            self._tags.pop(ref, None)
            if gone is not None:
                self._zonal.pop(gone.arn, None)
                self._tags.pop(gone.arn, None)

    def tags(self, arn: str) -> dict[str, str]:
        """A group's tags (whose it is: an awsctl Canary's, the LBC's, or a user's), one DescribeTags per
        group for as long as its settings are cached."""
        with self._lock:
            cached = self._tags.get(arn)
        if cached is not None:
            return cached
        found = describe_tags(self._clients.elbv2, [arn]).get(arn, {})
        with self._lock:
            self._tags[arn] = found
        return found

    def zonal(self, arn: str) -> bool:
        """Whether the group is known to turn cross-zone load balancing off: then a target outside the VPC
        goes in its own zone, not "all". Learnt from AWS refusing "all" (see register), as the LBC does:
        no attribute read for the groups (nearly all) that keep it on."""
        with self._lock:
            return self._zonal.get(arn, False)

    def vpc_cidrs(self, vpc_id: str | None) -> tuple[str, ...]:
        if not vpc_id:
            return ()
        with self._lock:
            if vpc_id in self._vpc_cidrs:
                return self._vpc_cidrs[vpc_id]
        vpcs = self._clients.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        cidrs = tuple(
            assoc["CidrBlock"]
            for vpc in vpcs
            for assoc in vpc.get("CidrBlockAssociationSet") or [{"CidrBlock": vpc["CidrBlock"]}]
            if assoc.get("CidrBlockState", {}).get("State", "associated") == "associated"
        ) + tuple(  # an IPv6 (or dual-stack) VPC: pod IPs in its IPv6 ranges are in the VPC too
            assoc["Ipv6CidrBlock"]
            for vpc in vpcs
            for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or ()
            if assoc.get("Ipv6CidrBlock") and assoc.get("Ipv6CidrBlockState", {}).get("State") == "associated"
        )
        with self._lock:
            self._vpc_cidrs[vpc_id] = cidrs
        return cidrs

    def health(self, arn: str) -> list[TargetHealth]:
        try:
            descriptions = self._clients.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        except ClientError as err:
            if not_found(err, "TargetGroup"):
                self.forget(arn)
                raise TargetGroupNotFound(arn) from err
            raise
        out = []
        for desc in descriptions:
            target = desc["Target"]
            health = desc.get("TargetHealth") or {}
            out.append(
                TargetHealth(
                    Target(target["Id"], int(target.get("Port") or 0), target.get("AvailabilityZone")),
                    health.get("State", "unavailable"),
                    health.get("Reason"),
                )
            )
        return out

    def register(self, arn: str, batch: tuple[Target, ...]) -> None:
        try:
            self._clients.elbv2.register_targets(TargetGroupArn=arn, Targets=[t.to_aws() for t in batch])
        except ClientError as err:
            zoned = tuple(
                replace(t, availability_zone=t.zone_hint) if t.availability_zone == "all" and t.zone_hint else t
                for t in batch
            )
            if error_code(err) == "ValidationError" and zoned != batch and not self.zonal(arn):
                # "all" refused: the group turns cross-zone off, so an IP outside the VPC goes in its node's zone.
                with self._lock:
                    self._zonal[arn] = True
                self._clients.elbv2.register_targets(TargetGroupArn=arn, Targets=[t.to_aws() for t in zoned])
                return
            if error_code(err) in ("InvalidTarget", "ValidationError"):
                # A target's AvailabilityZone ("all" outside the VPC) came from the VPC's ranges as they were
                # read: a range associated since makes AWS refuse it. Read them afresh next time.
                with self._lock:
                    self._vpc_cidrs.clear()
            raise

    def deregister(self, arn: str, batch: tuple[Target, ...]) -> None:
        try:
            self._clients.elbv2.deregister_targets(TargetGroupArn=arn, Targets=[t.to_aws() for t in batch])
        except ClientError as err:
            # Already gone is what we wanted.
            if error_code(err) not in ("InvalidTarget",):
                raise
