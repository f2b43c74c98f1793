"""The surveys service's use cases, one module per aggregate: ``surveys`` (drafting, publishing, the clock,
mixing), ``tokens`` (access codes), ``responses``, ``drafts`` (save and resume), ``results`` (results, free
texts, export) and ``removals``.

Every use case takes ``Units`` first (``ctx.uows(Store)``): commands open a unit of work, queries read from a
store outside any transaction, and the response path without a draft is one statement on a pooled connection
(its own transaction, one round trip: what lets a flood of responses through).
"""
