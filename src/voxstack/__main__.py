"""``python -m voxstack`` is the ``voxstack`` command."""

from voxstack.cli import main

main()
