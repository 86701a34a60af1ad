"""Alerts: tell the channels a team watches when a guard run opens or resolves a finding.

* :mod:`.config` reads ``[alerts]`` of modelward.toml: the channels (a signed JSON webhook,
  a Slack-compatible incoming webhook, Alertmanager), each routed by guard-code prefix and
  least severity, and the dashboard URL the messages link to;
* :mod:`.messages` builds each channel's message from a finding's transition: the finding,
  its fix and links to the dashboard pages of every id it names;
* :mod:`.deliver` queues one delivery per routed channel, finding and transition after a
  run (never one per decision) and sends the queue, retrying with backoff; every attempt is
  recorded in the ledger (``alert_deliveries``).

A layer of its own between the surfaces (``modelward check`` and the server's background
runs both notify) and the guards: it does network I/O, which no guard does.
See docs/alerts.md.
"""
