"""civic's web client for citizens: server-rendered pages on the services' public HTTP APIs (see web/README.md)."""
