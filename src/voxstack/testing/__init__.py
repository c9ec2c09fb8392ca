"""What the tests and the benchmarks share: voxstack run as real processes, and edits a test owns.

Not imported by the product; kept in the package so that ``tests/`` and
``bench/`` use one copy.
"""
