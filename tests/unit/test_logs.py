"""The operator's log lines: kopf's JSON format, with the logger's name and the handler's fields."""

import json
import logging

import pytest

from awsctl.controllers import logs


@pytest.fixture
def root_restored():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_name_the_logger_and_keep_extras(root_restored, capsys):
    logs.configure("json", verbose=False)
    logging.getLogger("awsctl.canary").warning("weight restored", extra={"canary": "demo/web", "weight": 2.5})
    logging.getLogger("awsctl.canary").debug("not at INFO")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["message"] == "weight restored" and line["severity"] == "warn"
    assert line["logger"] == "awsctl.canary" and line["canary"] == "demo/web" and line["weight"] == 2.5
    assert line["timestamp"].endswith("+00:00")


def test_a_traceback_stays_inside_its_json_line(root_restored, capsys):
    logs.configure("json", verbose=True)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("awsctl").exception("tick failed")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "RuntimeError: boom" in json.loads(lines[0])["exc_info"]


def test_text_is_for_people(root_restored, capsys):
    logs.configure("text", verbose=False)
    logging.getLogger("awsctl").info("awsctl operator starting")
    err = capsys.readouterr().err
    assert "awsctl operator starting" in err and not err.lstrip().startswith("{")
