import pytest

from awsctl.planning import weights as w
from awsctl.routing import alb_wire as wire


def test_half_percent_is_an_exact_alb_weight():
    primary, canary = [w.Backend("p")], [w.Backend("c")]
    assert w.target_weights(primary, canary, 5) == {"p": 995, "c": 5}
    assert w.canary_share({"p": 995, "c": 5}, ["c"]) == 5


@pytest.mark.parametrize("canary,expected", [(0, {"p": 999, "c": 0}), (1000, {"p": 0, "c": 999})])
def test_full_side_is_capped_at_999_without_changing_the_ratio(canary, expected):
    assert w.target_weights([w.Backend("p")], [w.Backend("c")], canary) == expected


def test_side_weight_is_split_by_relative_shares_and_sums_to_1000():
    weights = w.target_weights([w.Backend("p1", 1), w.Backend("p2", 3)], [w.Backend("c1", 1), w.Backend("c2", 1)], 101)
    assert weights == {"p1": 225, "p2": 674, "c1": 51, "c2": 50}
    assert sum(weights.values()) == 1000
    assert w.canary_share(weights, ["c1", "c2"]) == 101


def test_split_is_exact_and_deterministic():
    assert w.split(10, [1, 1, 1]) == [4, 3, 3]
    assert w.split(0, [1, 2]) == [0, 0]
    assert w.split(7, []) == []


def test_weights_read_back_from_aws_actions():
    action = wire.forward_action({"a": 995, "b": 5}, stickiness_seconds=60)
    assert action["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 60}
    assert wire.weights_of([action]) == {"a": 995, "b": 5}
    assert wire.weights_of([{"Type": "forward", "TargetGroupArn": "x"}]) == {"x": 1}
    assert wire.weights_of([{"Type": "fixed-response"}]) == {}
    assert w.canary_share({}, ["c"]) is None


def test_no_traffic_into_the_void():
    assert w.unserved({"p": 900, "c": 100}, {"p": 3, "c": 0}) == ["c"]
    assert w.unserved({"p": 999, "c": 0}, {"p": 3, "c": 0}) == []


def test_steps_and_promotion_steps():
    assert w.next_step(0, (5, 50, 200)) == 5
    assert w.next_step(5, (5, 50, 200)) == 50
    assert w.next_step(200, (5, 50, 200)) == 200
    assert w.promotion_step(500, None) == 0
    assert w.promotion_step(500, 200) == 300
    assert w.promotion_step(100, 200) == 0


def test_percent_round_trips_through_status():
    assert [w.from_percent(w.percent(p)) for p in (0, 5, 995, 1000)] == [0, 5, 995, 1000]
    assert w.from_percent(None) == 0


def test_raised_names_the_groups_whose_weight_goes_up():
    from awsctl.planning.weights import raised

    rows = [
        ({"p": 999, "c": 0}, {"p": 950, "c": 50}, ["c"]),  # a step: the canary goes up
        ({"p": 500, "c": 500}, {"p": 999, "c": 0}, ["p"]),  # a rollback: the primary goes up
        ({"p": 999, "c": 0}, {"p": 999, "c": 0}, []),  # the same weight: nothing to read
        (None, {"p": 950, "c": 50}, ["p", "c"]),  # unknown start (drift repair): every group that carries
        (None, {"p": 999, "c": 0}, ["p"]),
    ]
    for before, after, up in rows:
        assert raised(before, after) == up, (before, after)
