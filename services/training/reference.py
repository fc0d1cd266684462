"""Reference data of the training service: business fields, methods, modules, statuses.

The lists are extensible: add a code here (never rename or remove one that batches use) and deploy;
business fields are added in the kernel's taxonomy file, which training owns (pena/reference/).
Codes are stable identifiers that travel in events (training.batch_scheduled, training.completed)."""

from __future__ import annotations

from pena.reference.taxonomy import taxonomy

# code -> (label, parent field or None); a sub-field (makanan_berat) belongs to its parent (kuliner).
# The list itself is the kernel's versioned taxonomy (pena/reference/business_fields.json), which training
# owns and serves: participants and monev validate against the same file (docs/services/training.md).
BUSINESS_FIELDS_VERSION = taxonomy().version
BUSINESS_FIELDS: dict[str, tuple[str, str | None]] = {
    code: (entry.label, entry.parent) for code, entry in taxonomy().entries.items()
}

METHODS: dict[str, str] = {
    "life_skill_training": "Life skill training: applied, practised at once, driven by field needs",
    "community_based_learning": "Community based learning: held on location in the community",
}

MODULES: dict[str, str] = {
    "pena_introduction": "The PENA programme",
    "motivation_work_ethic": "Motivation and work ethic",
    "social_entrepreneurship_basics": "Basic knowledge and social entrepreneurship",
    "technical_skills": "Empowerment / technical skills for the family's business field",
}

DEFAULT_MIN_ATTENDANCE_RATE = 0.8

# planned -> open -> running -> completed (only through /close) ; any non-final -> cancelled
BATCH_STATUSES = ("planned", "open", "running", "completed", "cancelled")
TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"open", "cancelled"}),
    "open": frozenset({"running", "cancelled"}),
    "running": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}

# who may enrol, from the local read model fed by participant.* events
ENROLLABLE_PARTICIPANT_STATUSES = frozenset({"candidate", "active"})
ENROLMENT_OPEN_STATUSES = frozenset({"open", "running"})
ATTENDANCE_STATUSES = frozenset({"running"})
