"""Reference data shared by every service, written once: versioned data files next to the one module
that reads and validates them (the owner of each list is named in its file and in its service's docs:
business fields in docs/services/training.md, "Reference data")."""
