"""`rewind sandbox up --models N`: the files a fleet sandbox writes, and the one-model sandbox's unchanged."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from console.domain.errors import SandboxError
from console.sandbox.manager import DEFAULT_RATE, fleet_models, fleet_rate
from console.sandbox.model_server import parse_serve
from console.sandbox.templates import FleetBackend, haproxy_config, rewind_config

STATE = Path("/tmp/rewind-box")
ARGS = (STATE, "fraud-detector", 1001, 1002, 1003, {"1": 11, "2": 12, "3": 13}, {"1": 0, "2": 90, "3": 10}, 14)


def test_one_model_is_the_default_and_further_ones_are_numbered():
    assert fleet_models(1) == ["fraud-detector"]
    assert fleet_models(3) == ["fraud-detector", "fraud-detector-2", "fraud-detector-3"]
    assert fleet_rate(1) == DEFAULT_RATE
    with pytest.raises(SandboxError, match="--models 0"):
        fleet_models(0)


def test_each_further_model_has_its_own_backend_chosen_by_header():
    fleet = {"fraud-detector-2": FleetBackend({"1": 21, "2": 22}, {"1": 90, "2": 10}, "1")}
    text = haproxy_config(*ARGS, protected="2", fleet=fleet)
    assert haproxy_config(*ARGS, protected="2") == haproxy_config(*ARGS, protected="2", fleet=None)
    assert "use_backend be_fraud_detector_2 if { req.hdr(X-Rewind-Model) -m str fraud-detector-2 }" in text
    assert "    default_backend be_fraud_detector\n" in text
    extra = text[text.index("\nbackend be_fraud_detector_2"):]
    assert "server v1 127.0.0.1:21 weight 90" in extra and "server v2 127.0.0.1:22 weight 10" in extra
    assert "server fallback" not in extra  # no backup server of its own


def test_the_config_lists_every_model_and_one_model_lists_one():
    one = yaml.safe_load(rewind_config(STATE, "fraud-detector", 9090))
    assert one["router"]["backends"] == {"fraud-detector": "be_fraud_detector"}
    three = yaml.safe_load(rewind_config(STATE, "fraud-detector", 9090, fleet=["fraud-detector-2", "x-3"]))
    assert three["router"]["backends"] == {"fraud-detector": "be_fraud_detector",
                                           "fraud-detector-2": "be_fraud_detector_2", "x-3": "be_x_3"}
    assert three["default_model"] == "fraud-detector" and set(three["owners"]) == set(three["router"]["backends"])


def test_one_process_serves_several_pairs():
    assert parse_serve("fraud-detector-2=1@4242") == ("fraud-detector-2", "1", 4242)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_serve("fraud-detector-2@4242")


def test_ports_handed_out_together_are_all_different_and_held_until_the_block_ends():
    """A fleet sandbox asks for a dozen ports before any server binds one: each must be its own. A port that
    was released as soon as it was found could be handed out twice (Prometheus and a model server once
    shared one, and the model server failed to start)."""
    import socket

    from console.sandbox.manager import distinct_ports

    with distinct_ports() as take:
        ports = [take() for _ in range(40)]
        assert len(set(ports)) == len(ports)
        for port in ports[:5]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe, pytest.raises(OSError, match="in use"):
                probe.bind(("127.0.0.1", port))
