"""python -m pipelines.benchmark: see :mod:`pipelines.benchmark.cli`."""

from pipelines.benchmark.cli import main

raise SystemExit(main())
