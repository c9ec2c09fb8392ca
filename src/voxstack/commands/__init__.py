"""Subcommands of ``voxstack`` that belong to one feature each; cli.py registers them."""
