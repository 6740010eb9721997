"""Compliance casework: the alert queue, cases, four-eyes decisions, deadlines, filings, retention.

- :mod:`~amlscore.casework.store`: the durable store (alerts, cases, chained actions, filings);
- :mod:`~amlscore.casework.workflow`: the moves of a case and who may make them (four eyes);
- :mod:`~amlscore.casework.deadlines`: filing deadlines on the rules' working-day calendar;
- :mod:`~amlscore.casework.ingest`: alerts from the audit log and batch scoring, large-value reports;
- :mod:`~amlscore.casework.filings`: the regulator-format XML, validated against the project's XSD;
- :mod:`~amlscore.casework.dispositions`: approved decisions as reports rows for the next training;
- :mod:`~amlscore.casework.retention`: purge past retention behind signed chain cuts;
- :mod:`~amlscore.casework.web`: the pages (Starlette, server-rendered), mounted by the service on ``/cases``.

An application: it imports the core and the layers below, never serving, reports or training (docs/casework.md).
"""
