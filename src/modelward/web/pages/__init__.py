"""Dashboard pages, one module per concept; :mod:`._base` holds what they share."""
