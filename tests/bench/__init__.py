"""Benchmarks: ``make bench`` (``python -m tests.bench``).

Every ``bench_*.py`` module here defines ``figures()``, yielding
``(name, value, unit)``; the runner prints one line per figure and writes them
all as JSON to ``$BENCH_OUT`` when it is set. ``judge_soak.py`` follows the
same contract but runs only when named (``make bench-judge``): it takes about
12 minutes on the real sandbox. Figure names are stable: the
issues name them, and later runs are compared by name.
"""
