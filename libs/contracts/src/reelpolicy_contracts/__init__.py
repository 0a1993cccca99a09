"""The contracts every service and every platform operator depends on.

Event envelopes and payloads, topic names, the subject schema, ids and the limits of what
PostgreSQL stores. Pydantic only: installable without any of the runtime plumbing.
"""
