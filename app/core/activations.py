"""Activation functions: a learner's note and a pure-Python curve for each.

The curve feeds the small plot shown next to the activation choice, so the
formulas here mirror Keras' definitions closely enough to draw them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Activation:
    name: str
    note: str
    curve: Callable[[float], float]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _elu(x: float) -> float:
    return x if x > 0 else math.exp(x) - 1.0


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _gelu(x: float) -> float:
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("linear", "Passes values through unchanged: the usual output for regression.",
                   lambda x: x),
        Activation("relu", "Zero for negatives, the input itself for positives: cheap, and it "
                   "does not saturate for positive inputs, so it is the default for hidden layers.",
                   lambda x: max(0.0, x)),
        Activation("sigmoid", "Squashes any input into 0 to 1: a fit for the output of a yes/no "
                   "classifier, rarely for hidden layers, where it saturates and slows learning.",
                   _sigmoid),
        Activation("tanh", "Squashes any input into -1 to 1, centred on zero, which often helps "
                   "gradients flow better than sigmoid in hidden and recurrent layers.",
                   math.tanh),
        Activation("softmax", "Turns a row of scores into probabilities that add up to 1: the "
                   "output of a classifier with several classes (plotted for one score against a "
                   "second held at 0).", _sigmoid),
        Activation("elu", "Like relu for positives, smoothly bending to -1 for negatives, which "
                   "keeps outputs closer to zero on average.", _elu),
        Activation("selu", "A scaled elu that keeps activations normalized on its own when "
                   "paired with the lecun_normal initializer.",
                   lambda x: _SELU_SCALE * (x if x > 0 else _SELU_ALPHA * (math.exp(x) - 1.0))),
        Activation("gelu", "A smooth relu used by transformers: small negatives pass a little, "
                   "large negatives are cut off.", _gelu),
        Activation("swish", "x times sigmoid(x): smooth and slightly negative below zero; often "
                   "a small gain over relu in deeper networks.", lambda x: x * _sigmoid(x)),
        Activation("leaky_relu", "Like relu, but negatives keep a small slope (0.2) so that "
                   "neurons never go completely silent.", lambda x: x if x > 0 else 0.2 * x),
        Activation("softplus", "A smooth version of relu that is always positive.",
                   lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0)),
        Activation("hard_sigmoid", "A cheap straight-line approximation of sigmoid, from 0 to 1.",
                   lambda x: min(1.0, max(0.0, x / 6.0 + 0.5))),
    )
}


def curve_points(name: str, lo: float = -5.0, hi: float = 5.0, steps: int = 80) -> list[tuple[float, float]]:
    """Sample the activation's curve for plotting."""
    fn = ACTIVATIONS[name].curve
    return [(lo + (hi - lo) * i / steps, fn(lo + (hi - lo) * i / steps)) for i in range(steps + 1)]
