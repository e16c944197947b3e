"""The `bench.poison` schema, shared by the benches with QA records (read when a config is composed: no heavy imports)."""
from __future__ import annotations

from dataclasses import dataclass

# Where poison comes from (each bench maps them to one of its evaluation splits, `poison_sources`):
# retain = records of the retain set (the damage lands on data the model must keep); utility = general-knowledge
# items of the utility evaluation; neighbour = items next to the forget targets (TOFU's real authors).
STRATEGIES = ("retain", "utility", "neighbour")


@dataclass
class PoisonConfig:
    # Fraction of the forget request that is poison: the clean forget split is kept whole and
    # round(rate * n / (1 - rate)) items are added, so that poison / (clean + poison) = rate, as closely as
    # whole items allow. 0 = no poison.
    rate: float = 0.0
    strategy: str = "retain"
    seed: int = 0           # the draw of the poisoned items (not the training seed)
    # The service's detector (poison/screen.py) drops what it flags before unlearning; its precision and recall
    # are reported whether or not it drops anything.
    screen: bool = False
    # robust z-score (median / MAD of the request) beyond which an item is flagged (poison/screen.py)
    screen_z: float = 2.0
