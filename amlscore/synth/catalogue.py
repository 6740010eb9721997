"""The typology catalogue: how each laundering pattern is injected and how often it is reported.

Kept apart from :mod:`amlscore.synth.config` so that the world variants
(:mod:`amlscore.synth.variant`), which :class:`~amlscore.synth.config.SynthConfig` carries, can
check typology names without importing the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TypologySpec:
    """How one laundering typology is injected and reported.

    Attributes
    ----------
    name:
        Typology name as written in ground truth and in reports.
    scenarios_per_1000:
        Scenarios per 1,000 customers and year (the count scales with the bank and the window).
    min_scenarios:
        Floor on the count, so a small bank still shows the pattern in every third of its window.
    report_rate:
        Probability that a scenario is reported at all (labels are incomplete).
    default_enabled:
        Whether the default world generates it; the others only appear when a world variant
        switches them on (:mod:`amlscore.synth.variant`), typologies the features were not designed for.
    """

    name: str
    scenarios_per_1000: float
    min_scenarios: int
    report_rate: float
    description: str
    default_enabled: bool = True


# Why the report rates differ: cash structuring and high-risk remittances trip classic rules and are
# reported most; device sharing and cycles are hard for analysts to see and are reported least.
TYPOLOGY_SPECS: tuple[TypologySpec, ...] = (
    TypologySpec("structuring", 5.0, 3, 0.70, "cash deposits just under the 50,000 CNY large-cash threshold"),
    TypologySpec("fan_in", 1.5, 3, 0.60, "many depositors pay one collector account"),
    TypologySpec("fan_out", 1.5, 3, 0.60, "one account pays many new counterparties"),
    TypologySpec("rapid_pass_through", 4.0, 3, 0.65, "money in and out again within hours"),
    TypologySpec("shared_ip_device", 2.0, 3, 0.50, "one operator runs several customers' e-banking"),
    TypologySpec("ip_abroad", 4.0, 3, 0.55, "e-banking suddenly from abroad or another province"),
    TypologySpec("corp_to_personal", 2.0, 3, 0.60, "frequent large corporate-to-personal transfers"),
    TypologySpec("dormant_reactivation", 4.0, 3, 0.55, "dormant account suddenly moves large sums"),
    TypologySpec("high_risk_remittance", 4.0, 3, 0.70, "remittances to high-risk jurisdictions"),
    TypologySpec("agent_ring", 1.5, 3, 0.50, "agent-opened accounts sharing a contact, moving money among themselves"),
    TypologySpec("cycle", 2.0, 3, 0.45, "money going round A -> B -> C -> A"),
    TypologySpec("slow_layering", 2.5, 3, 0.5, "money moved slowly along a chain of intermediaries, days per hop",
                 default_enabled=False),
)
#: Every typology the generator knows (codes in ground truth and reports index into it).
TYPOLOGIES: tuple[str, ...] = tuple(s.name for s in TYPOLOGY_SPECS)
ALL_TYPOLOGIES = TYPOLOGIES
#: The typologies of the default world.
DEFAULT_TYPOLOGIES: tuple[str, ...] = tuple(s.name for s in TYPOLOGY_SPECS if s.default_enabled)
TYPOLOGY_BY_NAME: dict[str, TypologySpec] = {s.name: s for s in TYPOLOGY_SPECS}
