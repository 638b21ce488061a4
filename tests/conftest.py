"""Shared fixtures: the moto harness (tests/harness.py) with the standard AWS variables pointed at it."""

from __future__ import annotations

import os

import pytest

from tests.harness import moto_server


@pytest.fixture(scope="session")
def moto_session():
    with moto_server() as moto:
        saved = {k: os.environ.get(k) for k in moto.env()}
        os.environ.update(moto.env())
        try:
            yield moto
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def moto(moto_session):
    moto_session.reset()
    yield moto_session


class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def realism_clock(moto):
    """The realism layer's clock, moved by hand: health timings and token refills without sleeping."""
    original = moto.realism.clock
    moto.realism.clock = clock = ManualClock()
    yield clock
    moto.realism.clock = original
