"""Registry workflows over the ledger: auditing decisions, retention, gc and holds,
promotion and replay. Each module's functions back the CLI, the guards and the API alike."""
