"""Planning fidelity benchmark (issue 15, item 6).

A corpus of service catalogues and cases in several domains (``corpus/``), a pure scorer
(:mod:`bench.planning.score`), a runner that plans every case in-process through a
planner's public API (:mod:`bench.planning.runner`) and the report
(:mod:`bench.planning.report`). ``python -m bench planning`` runs it on its own; the full
harness (``python -m bench``) writes its "Planning fidelity" section to ``BENCHMARKS.md``.

The corpus has a **dev** set (``corpus/dev/``), which the planner's authors may read and
tune on, a **held-out** set (``corpus/held_out/``), which they must not read, and a
**fresh** set (``corpus/fresh/``), written once both others had been used to tune the
offline planner, by an author who read neither them nor the planner's matching code: its
score is the honest measure of how the planner generalises.
"""
