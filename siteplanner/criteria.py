"""The criterion registry: everything siteplanner knows about each scoring criterion, in one place.

For each criterion the registry holds its stable name, its direction (a
benefit adds to the score, a cost subtracts), its default weight and kernel
radius with the reason for each, the layer it is measured on, the feature
function that measures it, and the words and unit the outputs show.

The study (:mod:`siteplanner.config`) takes its defaults from here, and
:func:`siteplanner.features.compute_criteria` measures exactly these
criteria. Adding a criterion means adding one :class:`CriterionSpec` here
(and, if no existing function fits, its feature function in
:mod:`siteplanner.features`).

Why the defaults are what they are
----------------------------------
*Weights.* With no evidence about what matters more in a given market, the
defaults weigh every criterion equally. Equal ("unit") weights are the
standard neutral choice in multi-criteria scoring and predict about as well
as fitted weights out of sample (Dawes, 1979, "The robust beauty of improper
linear models", *American Psychologist* 34(7)). A study replaces them with its
own judgement, with AHP judgements (``[ahp]``) or with a learned model.

*Radii.* The unit of walking reach is the five-minute walk: 400 m at the
planning walking speed of 4.8 km/h (1.33 m/s, within the comfortable walking
speed of adults, 1.27-1.46 m/s, Bohannon 1997, *Age and Ageing* 26(1)). The
"quarter-mile / 400 m" walk is the common pedestrian-shed and transit-stop
catchment in planning practice. Cannibalisation uses two such walks (800 m):
two branches' five-minute catchments overlap whenever they are closer than
twice the walk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol

import geopandas as gpd
import pandas as pd

from siteplanner import features as feat
from siteplanner.footfall import attractor_sums, foot_traffic_points, foot_traffic_proxy
from siteplanner.layers import Layers
from siteplanner.pairsums import PairSum
from siteplanner.proximity import Proximity

__all__ = [
    "CRITERIA",
    "DEFAULT_WALK_M",
    "CriterionSpec",
    "Direction",
    "FeatureFunction",
    "criterion_names",
]

Direction = Literal["benefit", "cost"]

#: A five-minute walk at 4.8 km/h, in metres: the unit of the default radii (see the module notes).
DEFAULT_WALK_M = 400.0
_EQUAL_WEIGHT = "equal weights, the neutral default of multi-criteria scoring (Dawes 1979)"
_FIVE_MIN = "a five-minute walk (400 m at 4.8 km/h), the usual pedestrian catchment"


class FeatureFunction(Protocol):
    """Measure one criterion at each candidate: a ``pd.Series`` on the candidates' index."""

    def __call__(self, candidates: gpd.GeoDataFrame, layers: Layers, *, radius_m: float,
                 proximity: Proximity | None = None) -> pd.Series: ...


def _no_sums(layers: Layers, radius_m: float) -> list[PairSum]:
    return []


@dataclass(frozen=True)
class CriterionSpec:
    """One criterion as the registry knows it.

    Attributes
    ----------
    name
        The stable name: the column in every table and the key in ``[criteria.NAME]``.
    direction
        ``benefit`` adds to the score, ``cost`` subtracts from it.
    weight, weight_source
        The default weight (weights are shares: divided by their sum) and why.
    radius_m, radius_source
        The default kernel radius in metres and why.
    layer
        The layer the criterion is measured on (an attribute of :class:`~siteplanner.layers.Layers`).
    feature
        The function that measures it.
    label
        A short name for charts and tables, e.g. ``"transit access"``.
    words
        One plain sentence saying what a high value means, for the report.
    unit
        What the raw value counts.
    sums
        The pair sums (:class:`~siteplanner.pairsums.PairSum`) ``feature`` asks its
        proximity for at a radius, so a run can search each layer once for every
        criterion and count (:class:`~siteplanner.pairsums.SharedPairs`); none by default.
    """

    name: str
    direction: Direction
    weight: float
    weight_source: str
    radius_m: float
    radius_source: str
    layer: str
    feature: FeatureFunction
    label: str
    words: str
    unit: str
    sums: Callable[[Layers, float], list[PairSum]] = _no_sums

    def describe(self, radius_m: float | None = None, *, walk_speed_kmh: float = 4.8) -> str:
        """The criterion in plain words with its reach, e.g. "transit access within a 5-minute walk"."""
        r = self.radius_m if radius_m is None else radius_m
        minutes = r / (walk_speed_kmh * 1000 / 60)
        return f"{self.label} within a {minutes:.0f}-minute walk ({r:.0f} m)"


def _foot_traffic(candidates: gpd.GeoDataFrame, layers: Layers, *, radius_m: float,
                  proximity: Proximity | None = None) -> pd.Series:
    """Measured counts near each point, else the street-centrality proxy (:mod:`siteplanner.footfall`)."""
    points, measured = foot_traffic_points(layers)
    if not measured:
        return foot_traffic_proxy(candidates, layers, proximity=proximity)
    return feat.foot_traffic(candidates, points, radius_m=radius_m, measured=True,
                             proximity=proximity)


def _foot_traffic_sums(layers: Layers, radius_m: float) -> list[PairSum]:
    return [] if foot_traffic_points(layers)[1] else attractor_sums(layers)


def _transit(candidates: gpd.GeoDataFrame, layers: Layers, *, radius_m: float,
             proximity: Proximity | None = None) -> pd.Series:
    return feat.transit(candidates, layers.transit, radius_m=radius_m, proximity=proximity)


def _commercial(candidates: gpd.GeoDataFrame, layers: Layers, *, radius_m: float,
                proximity: Proximity | None = None) -> pd.Series:
    return feat.commercial(candidates, layers.pois, radius_m=radius_m, proximity=proximity)


def _competition(candidates: gpd.GeoDataFrame, layers: Layers, *, radius_m: float,
                 proximity: Proximity | None = None) -> pd.Series:
    return feat.competition(candidates, layers.competitors, radius_m=radius_m, proximity=proximity)


def _cannibalization(candidates: gpd.GeoDataFrame, layers: Layers, *, radius_m: float,
                     proximity: Proximity | None = None) -> pd.Series:
    return feat.cannibalization(candidates, layers.own_branches, radius_m=radius_m,
                                proximity=proximity)


def _transit_sums(layers: Layers, radius_m: float) -> list[PairSum]:
    return [feat.transit_sum(layers.transit, radius_m)]


def _commercial_sums(layers: Layers, radius_m: float) -> list[PairSum]:
    return [PairSum(layers.pois, radius_m)]


def _competition_sums(layers: Layers, radius_m: float) -> list[PairSum]:
    return [PairSum(layers.competitors, radius_m)]


def _cannibalization_sums(layers: Layers, radius_m: float) -> list[PairSum]:
    return [PairSum(layers.own_branches, radius_m)]


_SPECS = (
    CriterionSpec(
        name="foot_traffic", direction="benefit", weight=0.2, weight_source=_EQUAL_WEIGHT,
        radius_m=DEFAULT_WALK_M, radius_source=_FIVE_MIN, layer="foot_traffic",
        feature=_foot_traffic, label="foot traffic",
        words="how many people walk past (pedestrian activity nearby)",
        unit="measured: the counters' unit (people per day); proxy: kernel-weighted "
             "destinations and stops", sums=_foot_traffic_sums),
    CriterionSpec(
        name="transit", direction="benefit", weight=0.2, weight_source=_EQUAL_WEIGHT,
        radius_m=DEFAULT_WALK_M, radius_source=_FIVE_MIN, layer="transit",
        feature=_transit, label="transit access",
        words="how well served the spot is by bus, tram, metro and rail stops",
        unit="kernel-weighted stops, each weighted by its mode", sums=_transit_sums),
    CriterionSpec(
        name="commercial", direction="benefit", weight=0.2, weight_source=_EQUAL_WEIGHT,
        radius_m=DEFAULT_WALK_M, radius_source=_FIVE_MIN, layer="pois",
        feature=_commercial, label="shops and services nearby",
        words="how many shops, cafés, offices and services are close by",
        unit="kernel-weighted shops, food, offices and services", sums=_commercial_sums),
    CriterionSpec(
        name="competition", direction="cost", weight=0.2, weight_source=_EQUAL_WEIGHT,
        radius_m=DEFAULT_WALK_M, radius_source=_FIVE_MIN, layer="competitors",
        feature=_competition, label="competitor branches nearby",
        words="how many competitor banks are within reach (fewer is better)",
        unit="kernel-weighted competitor branches", sums=_competition_sums),
    CriterionSpec(
        name="cannibalization", direction="cost", weight=0.2, weight_source=_EQUAL_WEIGHT,
        radius_m=2 * DEFAULT_WALK_M,
        radius_source="two five-minute walks (800 m): two branches' 400 m catchments overlap "
                      "when they are closer than that",
        layer="own_branches", feature=_cannibalization, label="own branches nearby",
        words="how close the brand's own branches are (further is better)",
        unit="kernel-weighted own branches", sums=_cannibalization_sums),
)

#: The criteria by name, in the order every table shows them.
CRITERIA: Mapping[str, CriterionSpec] = MappingProxyType({s.name: s for s in _SPECS})


def criterion_names() -> tuple[str, ...]:
    """The criterion names in table order."""
    return tuple(CRITERIA)
