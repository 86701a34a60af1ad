"""The version of modelward: a leaf module, so nothing imports the package face for it.

pyproject.toml reads it (``[tool.setuptools.dynamic]``), so it is declared once."""

__version__ = "0.1.0"
