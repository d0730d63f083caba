"""Quality: Great Expectations 1.x checks on bounded frames, and their reports.

Owns what a check is (``checks``), the GX engine (``engine``: one frame; ``streaming``:
a query's result in chunks; ``runner``: checks against the work DB), the declared raw and
mart checks (``raw_checks``, ``mart_checks``), the per-run HTML/JSON reports
(``reports``) and the checked marts' fingerprint the publish step verifies
(``fingerprint``). Imports gate (the revenue band), extract and the base modules.
"""
