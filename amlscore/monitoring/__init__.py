"""Monitoring: drift of inputs, scores and alert rates against the model set's training reference, and
backtests of a rules change or a challenger model set over a past period (``amlscore monitor``,
``amlscore backtest``; docs/monitoring.md)."""
