"""Tooling that knows every service: the operator CLI, the one-process runner, embedded servers."""
