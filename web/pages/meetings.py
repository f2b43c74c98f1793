"""Meeting pages: the meeting, the registration form and its result, the manage page and cancelling."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
manage_router = APIRouter(include_in_schema=False)
