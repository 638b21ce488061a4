import pytest

from awsctl.api import binding, crds
from awsctl.planning.conditions import flagged, set_condition

ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def test_crd_files_match_the_models():
    for path, text in crds.expected().items():
        assert path.read_text() == text, f"{path.relative_to(crds.ROOT)} drifted from its source; run `make crds`"


def test_crds_dir_holds_only_crds():
    """`kubectl apply -f crds/` must apply cleanly: nothing but CustomResourceDefinitions in it."""
    import yaml

    for path in crds.crds_dir().iterdir():
        kinds = {doc["kind"] for doc in yaml.safe_load_all(path.read_text()) if doc}
        assert kinds == {"CustomResourceDefinition"}, f"crds/{path.name} holds {kinds}"


def test_binding_crd_contract():
    crd = binding.definition()
    assert crd["metadata"]["name"] == "targetgroupbindings.awsctl.io"
    assert crd["spec"]["names"]["shortNames"] == ["tgb"]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    for wanted in ("Type", "Registered", "Healthy", "Ready", "Age"):
        assert wanted in columns


def test_spec_parse_accepts_number_or_name_and_one_group_ref():
    spec = binding.BindingSpec.parse({"serviceRef": {"name": "web", "port": "80"}, "targetGroupName": "tg"})
    assert spec.service_port == 80 and spec.target_group_ref == "tg"
    spec = binding.BindingSpec.parse({"serviceRef": {"name": "web", "port": "http"}, "targetGroupARN": ARN})
    assert spec.service_port == "http"


@pytest.mark.parametrize(
    "spec,field",
    [
        ({"serviceRef": {"port": 80}, "targetGroupName": "tg"}, "spec.serviceRef.name"),
        ({"serviceRef": {"name": "web"}, "targetGroupName": "tg"}, "spec.serviceRef.port"),
        ({"serviceRef": {"name": "web", "port": 80}}, "spec.targetGroupARN"),
        (
            {"serviceRef": {"name": "web", "port": 80}, "targetGroupName": "a", "targetGroupARN": "b"},
            "spec.targetGroupARN",
        ),
        (
            {"serviceRef": {"name": "web", "port": 80}, "targetGroupName": "a", "targetType": "lambda"},
            "spec.targetType",
        ),
    ],
)
def test_spec_errors_name_the_field(spec, field):
    with pytest.raises(binding.SpecError) as err:
        binding.BindingSpec.parse(spec)
    assert err.value.field == field


def test_condition_transition_time_moves_only_on_status_change():
    first = set_condition(None, type="Ready", status=False, reason="A", message="m", now="t1", generation=1)
    same = set_condition(first, type="Ready", status=False, reason="B", message="m2", now="t2", generation=2)
    flipped = set_condition(same, type="Ready", status=True, reason="Synced", message="ok", now="t3", generation=2)
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["reason"] == "B"
    assert flipped[0]["lastTransitionTime"] == "t3" and flipped[0]["status"] == "True"


def test_a_flagged_condition_is_news_when_the_problem_starts_or_changes_reason_not_when_its_figure_moves():
    fine = ("EnoughRequests", "ok")
    table = [
        # (previous (status, reason) or None, problem, expected status, news)
        (None, None, "True", False),
        (None, ("TooFewRequests", "37 requests"), "False", True),
        (("True", "EnoughRequests"), ("TooFewRequests", "37 requests"), "False", True),
        (("False", "TooFewRequests"), ("TooFewRequests", "41 requests"), "False", False),  # only the count moved
        (("False", "Other"), ("TooFewRequests", "41 requests"), "False", True),
        (("False", "TooFewRequests"), None, "True", False),
    ]
    for previous, problem, status, news in table:
        before = (
            [{"type": "Evidence", "status": previous[0], "reason": previous[1], "message": "m"}] if previous else None
        )
        after, told = flagged(before, type="Evidence", problem=problem, fine=fine, now="t", generation=1)
        (cond,) = after
        assert (cond["status"], told) == (status, news), (previous, problem)
        assert cond["reason"] == (problem or fine)[0] and cond["message"] == (problem or fine)[1]
