"""Storage helpers shared by every layer that keeps durable state (the feature store, the audit log).

Nothing here knows a feature, a model or HTTP; it imports no other amlscore package.
"""
