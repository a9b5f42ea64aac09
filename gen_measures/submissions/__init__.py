"""Competition submissions: run an unmodified PGDL ``complexity.py`` on any zoo (:mod:`.ingest`)."""
