"""The operator's API budget against the realism layer's AWS rate limits: waiting its turn instead
of being throttled, and slowing down when someone else spent the account's budget."""

import threading
import time

import boto3
import pytest

from awsctl.aws.budget import Budget, Rate
from awsctl.aws.clients import Clients

pytestmark = pytest.mark.aws


def hammer(clients: Clients, calls: int, threads: int = 4) -> float:
    """`calls` DescribeTargetGroups from several threads at once; returns the seconds it took."""
    elbv2 = clients.elbv2
    per_thread = calls // threads
    started = time.monotonic()
    workers = [
        threading.Thread(target=lambda: [elbv2.describe_target_groups() for _ in range(per_thread)])
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return time.monotonic() - started


def clients_in(moto, region: str, budget: Budget) -> Clients:
    """A region of its own: the realism layer's buckets are per account and region, so fresh here."""
    env = moto.env()
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    return Clients(session=session, budget=budget)


def test_calls_wait_their_turn_instead_of_being_throttled(moto, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    budget = Budget()
    before = moto.realism.stats.throttled
    took = hammer(clients_in(moto, "eu-west-1", budget), 60)
    assert moto.realism.stats.throttled == before  # AWS never had to say no
    assert budget.throttled() == 0 and budget.calls[("DescribeTargetGroups", "ok")] == 60
    assert took >= (60 - 40) / 10  # the Describe bucket: 40 at once (some held back), then 10 a second
    assert budget.waited["elbv2-describe"] > 0


def test_a_throttling_that_still_arrives_slows_the_bucket_and_is_counted(moto, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    budget = Budget({"elbv2-describe": Rate(200, 200.0)})  # far more than the account allows
    hammer(clients_in(moto, "eu-west-2", budget), 60)
    assert budget.throttled() > 0  # counted ...
    assert budget.buckets["elbv2-describe"].rate < 200.0  # ... and the bucket slowed down
    assert budget.calls[("DescribeTargetGroups", "ok")] == 60  # botocore retried: every call got through
