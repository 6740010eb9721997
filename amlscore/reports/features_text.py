"""Feature values for people in the reports (CNY amounts, yes/no, channel names, shares in %).

The feature's label is :func:`amlscore.features.labels.feature_label`, the package's one wording.
"""

from __future__ import annotations


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
