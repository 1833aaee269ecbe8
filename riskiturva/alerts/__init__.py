"""Alerts: events of the store → rules → notifications in an outbox → e-mail, Teams, Slack
and signed webhooks (docs/alerts.md).

- `settings`: the `[settings.alerts]`, `[organisations.alerts]` and `[partners.alerts]`
  tables, validated like the rest of the configuration;
- `rules`: pure functions from what a run changed to alert drafts (no database);
- `models`: the tables (alerts, their notifications, the outbox messages, attempts);
- `outbox`: records alerts and their notifications in the reconcile's own transaction;
- `render`: the words of a message (fi/sv/en), as e-mail, Adaptive Card, Slack or JSON;
- `channels`: SMTP and HTTP delivery, HMAC signatures;
- `sender`: batches due notifications into messages and delivers them, with retries.

Nothing here is imported by `riskiturva.config` except `settings`, which imports nothing
of the rest, so loading the configuration stays cheap.
"""
