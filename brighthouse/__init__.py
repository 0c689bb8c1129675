"""The ``brighthouse`` command line: the entry layer above ``components`` and ``serving``."""
