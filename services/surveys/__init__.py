"""The surveys service."""
