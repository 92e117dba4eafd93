"""The sandbox's model servers score with the loaded model's own weights only when that gives pyfunc's numbers."""

from __future__ import annotations

import math

import pandas as pd

from console.sandbox.model_server import fast_scorer
from console.sandbox.scenarios import FEATURES

VALUES = {"amount": 0.4, "velocity": -1.2, "account_age": 0.3, "hour": 2.0}


class Inner:
    def __init__(self, weights, bias):
        self.weights, self.bias = weights, bias


class FakePyfunc:
    """A loaded model: ``predict`` computes a logistic score from ``truth``; ``inner`` is what unwrapping gives."""

    def __init__(self, inner, truth=(2.0, 1.5, -1.0, 0.5, -0.5)):
        self.inner, self.truth, self.calls = inner, truth, 0

    def unwrap_python_model(self):
        if self.inner is None:
            raise AttributeError("not a python model")
        return self.inner

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        *weights, bias = self.truth
        z = sum(w * frame[f].iloc[0] for w, f in zip(weights, FEATURES, strict=True)) + bias
        return pd.DataFrame({"score": [1 / (1 + math.exp(-z))]})


def test_a_logistic_scorer_is_scored_from_its_weights_with_pyfunc_s_numbers():
    model = FakePyfunc(Inner([2.0, 1.5, -1.0, 0.5], -0.5))
    score = fast_scorer(model)
    calls = model.calls  # the probes at start
    assert abs(score(VALUES) - float(model.predict(pd.DataFrame([VALUES]))["score"].iloc[0])) < 1e-12
    assert model.calls == calls + 1  # the served score did not go through pyfunc


def test_any_other_model_or_any_difference_goes_through_pyfunc():
    for inner in (None, Inner([2.0, 1.5, -1.0, 0.5], -0.4), Inner(["a"], 0.0)):
        model = FakePyfunc(inner)
        score = fast_scorer(model)
        before = model.calls
        score(VALUES)
        assert model.calls == before + 1, inner
