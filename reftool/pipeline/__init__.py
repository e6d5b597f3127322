"""Pipelines: digests and the hash cache (SPEC section 8), the plan, the one decision (section 10),
the workspace it observes, the lock and its journal (section 9), the run cache and remotes, and
execution (section 11). Imports only `reftool.files`.
"""
