"""Registration's use cases, one module per aggregate: ``meetings`` (staff edit meetings), ``registrations``
(register, cancel, promote), ``checkin`` (at the door), ``privacy`` (erasure, retention, data exports).

Each is an async function over a unit of work on ``store.Store``; refusals are ``shared.errors`` exceptions.
"""
