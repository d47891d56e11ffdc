"""The single source of kstream's version."""

__version__ = "0.1.0.dev0"
