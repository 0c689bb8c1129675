"""Data: finding pairs, reading photos into upright sRGB, validating pairs, deliveries and
data versions, and reading the LMDBs the ``lmdb`` stage writes."""
