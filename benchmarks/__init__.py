"""kstream's benchmark suite: framing in memory, end to end, scale.

Run it with ``make bench``, ``python -m benchmarks [--quick] [--only NAME]`` or
``kstream bench``; results go to ``docs/benchmarks/``. Benchmarks are not tests:
``tests/test_benchmarks_smoke.py`` only runs each once on tiny sizes.
"""
