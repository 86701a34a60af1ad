"""The command line: a Typer app (``app.py``) and one module per command group."""
