"""The staff console under ``/verwaltung`` (docs/console.md): sign-in (``auth``, ``local``), the session and the
services' tokens (``session``), the layout (``layout``, templates/console/base.html), the tenant choice
(``tenants``) and the overview (``overview``); the other parts' pages build on these."""
