"""Code every civic service uses: event contracts, the bus, database access, settings and HTTP conventions.

Nothing in here imports a service.
"""
