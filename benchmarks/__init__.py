"""Benchmarks of the kit's costs against their targets (issue 5); run ``python -m benchmarks``.

One module per figure; each has ``NAME`` and ``run(settings) -> Outcome`` (see ``common``).
"""
