"""AHP weights: a published worked example, consistency, and the judgements a planner gets wrong."""

from __future__ import annotations

import numpy as np
import pytest

from siteplanner._errors import ConfigError, InputError
from siteplanner.ahp import ahp_matrix, ahp_weights, weights_from_judgements
from siteplanner.config import CRITERIA

# Saaty's drink-consumption example: "Which drink is consumed more in the
# U.S.?", judged pairwise by a group, in T. L. Saaty, "Decision making with the
# analytic hierarchy process", Int. J. Services Sciences 1(1), 2008, 83-98
# (also in Saaty, Notices of the AMS 60(2), 2013). Rows and columns: coffee,
# wine, tea, beer, sodas, milk, water; a_ij = how much more of i is drunk.
DRINKS = ["coffee", "wine", "tea", "beer", "sodas", "milk", "water"]
DRINK_MATRIX = np.array([
    [1, 9, 5, 2, 1, 1, 1 / 2],
    [1 / 9, 1, 1 / 3, 1 / 9, 1 / 9, 1 / 9, 1 / 9],
    [1 / 5, 3, 1, 1 / 3, 1 / 4, 1 / 3, 1 / 9],
    [1 / 2, 9, 3, 1, 1 / 2, 1, 1 / 3],
    [1, 9, 4, 2, 1, 2, 1 / 2],
    [1, 9, 3, 1, 1 / 2, 1, 1 / 3],
    [2, 9, 9, 3, 2, 3, 1],
])
# The derived scale the paper prints (three decimals), next to the actual
# consumption shares from statistical sources (.180 .010 .040 .120 .180 .140 .330).
DRINK_PUBLISHED = [0.177, 0.019, 0.042, 0.116, 0.190, 0.129, 0.327]


def test_matches_saaty_drink_example():
    res = ahp_weights(DRINK_MATRIX, DRINKS)
    got = [round(res.weights[d], 3) for d in DRINKS]
    assert got == DRINK_PUBLISHED
    # lambda_max of this matrix; CI = (lambda - 7) / 6, RI(7) = 1.32 (Saaty 1980).
    assert res.lambda_max == pytest.approx(7.1766, abs=1e-4)
    assert res.consistency_ratio == pytest.approx((res.lambda_max - 7) / 6 / 1.32)
    assert res.consistency_ratio < 0.1


def test_consistent_judgements_give_the_exact_ratios():
    # foot traffic 2x transit, transit 2x commercial => foot 4x commercial: CR is 0.
    res = weights_from_judgements(
        {"foot_traffic": {"transit": 2, "commercial": 4}, "transit": {"commercial": 2}},
        list(CRITERIA))
    assert res.weights["foot_traffic"] == pytest.approx(4 / 7)
    assert res.weights["transit"] == pytest.approx(2 / 7)
    assert res.weights["commercial"] == pytest.approx(1 / 7)
    assert res.weights["competition"] == 0.0 and res.weights["cannibalization"] == 0.0
    assert res.consistency_ratio == pytest.approx(0.0, abs=1e-9)


def test_flat_keys_and_fraction_strings_read_like_toml_dotted_keys():
    flat = weights_from_judgements({"foot_traffic.transit": "1/3"}, list(CRITERIA))
    assert flat.weights["transit"] == pytest.approx(0.75)
    assert sum(flat.weights.values()) == pytest.approx(1.0)


def test_inconsistent_judgements_are_rejected_naming_the_worst_comparison():
    # Consistent judgements (weights 9:3:1:3 for foot traffic, transit, commercial,
    # competition), then one flipped hard: commercial 7x competition.
    j = {"foot_traffic": {"transit": 3, "commercial": 9, "competition": 3},
         "transit": {"commercial": 3, "competition": 1},
         "commercial": {"competition": 1 / 3}}
    with pytest.raises(InputError) as exc:
        weights_from_judgements({**j, "commercial": {"competition": 7}}, list(CRITERIA))
    msg = str(exc.value)
    assert "consistency ratio" in msg and "> 0.1" in msg
    assert "commercial.competition = 7" in msg
    # The same judgements with the outlier fixed pass.
    ok = weights_from_judgements(j, list(CRITERIA))
    assert ok.consistency_ratio < 0.1


def test_non_reciprocal_matrix_is_rejected():
    m = np.array([[1, 3, 5], [1 / 3, 1, 2], [1 / 5, 1 / 4, 1]])
    with pytest.raises(InputError, match=r"not reciprocal.*a\[b, c\] = 2 but a\[c, b\] = 0.25"):
        ahp_weights(m, ["a", "b", "c"])
    diag = np.array([[2.0, 1.0], [1.0, 1.0]])
    with pytest.raises(InputError, match="diagonal"):
        ahp_weights(diag, ["a", "b"])


def test_contradicting_pair_in_the_study_is_rejected():
    with pytest.raises(ConfigError, match="foot_traffic.transit = 3 contradicts"):
        ahp_matrix({"transit": {"foot_traffic": 2}, "foot_traffic": {"transit": 3}}, list(CRITERIA))


@pytest.mark.parametrize(("judgements", "needle"), [
    ({"foot_traffic": {"transit": 3, "commercial": 2}}, "no judgement between transit and commercial"),
    ({"foot_traffic": {"parking": 3}}, "unknown criterion 'parking'"),
    ({"foot_traffic": {"transit": 0}}, "positive ratio"),
    ({"foot_traffic": {"transit": "lots"}}, "not a number"),
    ({"foot_traffic": {"foot_traffic": 1}}, "not compared with itself"),
])
def test_bad_judgements_say_what_to_fix(judgements, needle):
    with pytest.raises(ConfigError, match=needle):
        weights_from_judgements(judgements, list(CRITERIA))
