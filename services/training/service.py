"""The training service layer, one import for the routes: keyword-only async use cases taking the
session; they never commit (the request dependency or the consumer runner owns the transaction).
Each lives in the module named for its concept."""

from __future__ import annotations

from services.training.attendance import record_attendance
from services.training.batches import batch_view, change_status, create_batch, get_batch, list_batches
from services.training.centres import centre_read, create_centre, get_centre, list_centres
from services.training.completion import CloseOutcome, close_batch
from services.training.enrolment import enrol, withdraw
from services.training.entry_rules import entry_policies
from services.training.roster import roster

__all__ = [
    "CloseOutcome",
    "batch_view",
    "centre_read",
    "change_status",
    "close_batch",
    "create_batch",
    "create_centre",
    "enrol",
    "entry_policies",
    "get_batch",
    "get_centre",
    "list_batches",
    "list_centres",
    "record_attendance",
    "roster",
    "withdraw",
]
