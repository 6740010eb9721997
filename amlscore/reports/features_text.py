"""Features for people in the reports: short labels (:mod:`amlscore.features.labels`) and values in words.

A test checks that every catalogue feature has a label in both languages.
"""

from __future__ import annotations

from amlscore.features.labels import short_label_pair
from amlscore.models.rules import texts as rule_texts


def feature_label(name: str, lang: str = "en") -> str:
    """A short label of a catalogue feature in ``lang`` (the bare name when none is known)."""
    pair = short_label_pair(name)
    if pair is not None:
        return pair[1] if lang == "zh" else pair[0]
    if name in rule_texts.FEATURES:
        return rule_texts.pick(rule_texts.FEATURES[name], lang)
    return name


def has_label(name: str) -> bool:
    """True when ``name`` has a composed or listed label (used by the tests)."""
    return short_label_pair(name) is not None or name in rule_texts.FEATURES


def feature_kind(name: str) -> str:
    """The catalogue kind of a feature (``amount``, ``count``, ``ratio``, ``flag``, ``code``, ``duration``)."""
    from amlscore.features.catalogue import SPECS_BY_NAME

    spec = SPECS_BY_NAME.get(name)
    return spec.kind if spec is not None else "ratio"


def feature_value_text(name: str, value: float | None, lang: str = "en") -> str:
    """A feature's value for people: CNY amounts, yes/no flags, channel and type names, shares in %."""
    import math

    from amlscore.contract.schema import CHANNELS, TXN_TYPES
    from amlscore.reports import i18n

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return i18n.t("unknown", lang)
    kind = feature_kind(name)
    v = float(value)
    if name == "channel_code" and 0 <= v < len(CHANNELS):
        return i18n.word(i18n.CHANNELS, CHANNELS[int(v)], lang)
    if name == "txn_type_code" and 0 <= v < len(TXN_TYPES):
        return i18n.word(i18n.TXN_TYPES, TXN_TYPES[int(v)], lang)
    if kind == "flag":
        return i18n.t("yes", lang) if v else i18n.t("no", lang)
    if kind == "amount" and name != "log_amount":
        return i18n.fmt_cny(v, lang, 0 if abs(v) >= 1000 else 2)
    if kind == "count" or kind == "code":
        return i18n.fmt_int(v, lang)
    if name.endswith("_share_30d") or name.startswith("share_") or name == "in_share_30d":
        return i18n.fmt_pct(v, lang, 0)
    if kind == "duration":
        return i18n.fmt_num(v, lang, 1)
    return i18n.fmt_num(v, lang, 2)
