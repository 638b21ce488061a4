"""`awsctl dev` and `awsctl demo` name the extra they need instead of failing on an import."""

from importlib import metadata

from awsctl import cli
from awsctl.dev import missing_packages

REQUIRES = [
    "kopf>=1.38",
    'moto[server]>=5.1; extra == "dev"',
    'kubernetes>=31.0; extra == "dev"',
    'no-such-distribution-awsctl>=1; extra == "dev"',
    'also-absent>=1; extra == "test"',
    'matplotlib-absent>=3.8; extra == "demo"',
]


def test_only_the_dev_extras_absent_distributions_are_named():
    assert missing_packages(REQUIRES) == ["no-such-distribution-awsctl"]
    assert missing_packages(REQUIRES, ("dev", "demo")) == ["no-such-distribution-awsctl", "matplotlib-absent"]


def test_the_installed_metadata_declares_the_dev_extra_and_it_is_installed():
    dev = [line for line in metadata.requires("awsctl") if 'extra == "dev"' in line]
    assert {line.split(">=")[0] for line in dev} == {"moto[server]", "kubernetes"}
    assert missing_packages() == []


def test_dev_asks_for_the_extra_by_name(monkeypatch, capsys):
    monkeypatch.setattr("awsctl.dev.missing_packages", lambda extras: ["moto"])
    assert cli.main(["dev", "env"]) == 1
    err = capsys.readouterr().err
    assert err == "error: awsctl dev needs moto, from the dev extra: pip install 'awsctl[dev]'\n"


def test_demo_asks_for_its_own_extra(monkeypatch, capsys):
    monkeypatch.setattr("awsctl.dev.missing_packages", lambda extras: ["matplotlib"] if "demo" in extras else [])
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err == "error: awsctl demo needs matplotlib, from the demo extra: pip install 'awsctl[demo]'\n"
