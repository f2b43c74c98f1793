"""Subscription pages: confirm a subscription and unsubscribe, each through one button (a POST)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
