from awsctl.planning.target_type import TARGET_TYPE_ANNOTATION, decide_target_type


def svc(cluster_ip="10.96.0.10", annotation=None):
    meta = {"annotations": {TARGET_TYPE_ANNOTATION: annotation}} if annotation else {}
    return {"metadata": meta, "spec": {"clusterIP": cluster_ip}}


def test_headless_always_gets_ip():
    assert decide_target_type(svc("None"), None, "instance").target_type == "ip"
    assert decide_target_type(svc("None", annotation="instance"), None, None).target_type == "ip"
    assert decide_target_type(svc("None"), "ip", "ip").target_type == "ip"


def test_instance_on_headless_is_refused_with_a_reason():
    decision = decide_target_type(svc("None"), "instance", "instance")
    assert not decision.ok
    assert decision.reason == "InstanceModeOnHeadlessService"
    assert "NodePort" in decision.message and "spec.targetType" in decision.message


def test_precedence_spec_then_annotation_then_group():
    assert decide_target_type(svc(annotation="ip"), "instance", "instance").target_type == "instance"
    assert decide_target_type(svc(annotation="ip"), None, "ip").target_type == "ip"
    assert decide_target_type(svc(), None, "instance").target_type == "instance"


def test_mismatch_with_the_group_is_explained():
    decision = decide_target_type(svc(annotation="ip"), None, "instance")
    assert decision.reason == "TargetTypeMismatch"


def test_bad_annotation_value_names_its_source():
    decision = decide_target_type(svc(annotation="lambda"), None, None)
    assert decision.reason == "UnsupportedTargetType" and TARGET_TYPE_ANNOTATION in decision.message
