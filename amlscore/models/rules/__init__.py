"""The rule-based score: PBoC-style customer risk rating, transaction rules, large-value reports.

Public API (see ``docs/rules.md`` for the method, every table and the proxies used)::

    config = load_rules_config()                      # amlscore/models/config/rules.yaml, validated; config.hash
    behaviour = customer_behaviour(features, as_of, config, transactions=txns)
    result = rate_customers(customers, reports, behaviour, config, as_of)
    result.ratings, result.breakdown                  # levels, scores, per-sub-item breakdown
    explain_rating(result, "C1", lang="zh")           # words, English or Chinese

    rules = evaluate_rules(features, config)          # rule score per transaction (frame)
    score = score_transaction_rules(row, config)      # the same for one row (dict or 1-D array)
    explain_rules(score, config, lang="en")

    large_value_reports(transactions, customers, config)
    suppress_alerts(alerts, result.ratings, dispositions, config, customers=customers)
    review_schedule(...), overdue_reviews(...), unrated_new_customers(...)

Scores' direction: the higher, the riskier (rating 0..100; rule score 0..100).
"""

from amlscore.models.rules import spec, texts
from amlscore.models.rules.behaviour import customer_behaviour
from amlscore.models.rules.config import RulesConfig, RulesConfigError, load_rules_config, parse_rules_config
from amlscore.models.rules.explain import breakdown_text, explain_rating, explain_rules
from amlscore.models.rules.large_value import large_value_reports
from amlscore.models.rules.rating import RatingResult, rate_customers
from amlscore.models.rules.review import add_working_days, overdue_reviews, review_schedule, unrated_new_customers
from amlscore.models.rules.suppression import suppress_alerts
from amlscore.models.rules.transaction_rules import FiredRule, RuleScore, evaluate_rules, rule_scores, score_transaction_rules

__all__ = [
    "FiredRule",
    "RatingResult",
    "RuleScore",
    "RulesConfig",
    "RulesConfigError",
    "add_working_days",
    "breakdown_text",
    "customer_behaviour",
    "evaluate_rules",
    "explain_rating",
    "explain_rules",
    "large_value_reports",
    "load_rules_config",
    "overdue_reviews",
    "parse_rules_config",
    "rate_customers",
    "review_schedule",
    "rule_scores",
    "score_transaction_rules",
    "spec",
    "suppress_alerts",
    "texts",
    "unrated_new_customers",
]
