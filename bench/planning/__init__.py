"""Planning fidelity benchmark (issue 15, item 6).

A corpus of service catalogues and cases in several domains (``corpus/``), a pure scorer
(:mod:`bench.planning.score`), a runner that plans every case in-process through a
planner's public API (:mod:`bench.planning.runner`) and the report
(:mod:`bench.planning.report`). ``python -m bench planning`` runs it on its own; the full
harness (``python -m bench``) writes its "Planning fidelity" section to ``BENCHMARKS.md``.

The corpus has a **dev** set (``corpus/dev/``), which the planner's authors may read and
tune on, and a **held-out** set (``corpus/held_out/``), which they must not read: its
score measures how the planner generalises.
"""
