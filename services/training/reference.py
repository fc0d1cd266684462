"""Reference data of the training service: business fields, methods, modules, statuses.

The lists are extensible: add a code here (never rename or remove one that batches use) and deploy.
Codes are stable identifiers that travel in events (training.batch_scheduled, training.completed)."""

from __future__ import annotations

# code -> (label, parent field or None); a sub-field (makanan_berat) belongs to its parent (kuliner)
BUSINESS_FIELDS: dict[str, tuple[str, str | None]] = {
    "kuliner": ("Kuliner (culinary)", None),
    "makanan_berat": ("Makanan berat (cooked meals)", "kuliner"),
    "agribisnis": ("Agribisnis (agribusiness)", None),
    "dagang": ("Dagang (trade)", None),
    "fashion_menjahit": ("Fashion / menjahit (tailoring)", None),
    "konveksi": ("Konveksi (garment making)", "fashion_menjahit"),
    "jasa": ("Jasa (services)", None),
    "otomotif": ("Otomotif (automotive)", None),
    "kerajinan_tangan": ("Kerajinan tangan (handicrafts)", None),
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
