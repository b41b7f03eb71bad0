#!/usr/bin/env python
"""Validate and index a downloaded BraTS 2017-2021 folder (one folder per case: <case>_t1/_t1ce/_t2/_flair/_seg.nii.gz).

    python data_scripts/prepare_brats.py /path/to/brats [--out index.json]

Every file is opened with the course's readers; bad files are listed with the reason and the
fix, and the index (paths, shapes) is saved as JSON for the course's loaders. Exit status 1 if
any file is bad, 2 if the folder is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mricourse.data.prepare import index_brats, prepare_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(prepare_main(index_brats, __doc__.split("\n\n")[0]))
