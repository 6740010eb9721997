"""The synthetic bank: a realistic population, its legitimate behaviour, injected laundering and labels.

Typical use::

    from amlscore.synth import SynthConfig, generate_bank, write_bank

    bank = generate_bank(SynthConfig(customers=2000, days=365, seed=42))
    write_bank(bank, "data/default")          # customers, transactions, reports + ground_truth.csv
"""

from amlscore.synth.bank import GROUND_TRUTH_COLUMNS, STEPS, SyntheticBank, generate_bank, write_bank
from amlscore.synth.config import TYPOLOGIES, TYPOLOGY_SPECS, SynthConfig, TypologySpec

__all__ = [
    "GROUND_TRUTH_COLUMNS",
    "STEPS",
    "TYPOLOGIES",
    "TYPOLOGY_SPECS",
    "SynthConfig",
    "SyntheticBank",
    "TypologySpec",
    "generate_bank",
    "write_bank",
]
