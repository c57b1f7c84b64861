"""Makes a study a sibling of the product benchmarks: ``import _parent`` first, in one line.

It puts ``benchmarks/`` on ``sys.path``, so that a study imports the product benchmarks'
helpers (``_common``, ``multitarget``, ``uncertainty``, ...) by name, and sends
:func:`_common.write_report` and :func:`_common.write_study` to ``studies/results/``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common

_common.output = _common.STUDY_RESULTS
