"""The registry's use cases. Each takes a unit-of-work factory (``ports.UowFactory``) and
keyword-only arguments, commits explicitly, and emits one event per changed record
through the unit of work (the outbox).

- :mod:`.records`: create, read, patch, delete enterprises and productions; republish;
- :mod:`.api_keys`: issue and revoke API keys;
- :mod:`.imports`: import a file's rows (validate, upsert, report).
"""
