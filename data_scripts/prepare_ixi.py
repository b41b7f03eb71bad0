#!/usr/bin/env python
"""Validate and index a downloaded IXI folder (IXI-T1/, IXI-T2/, IXI-PD/ of IXI012-HH-1211-T1.nii.gz files).

    python data_scripts/prepare_ixi.py /path/to/ixi [--out index.json]

Every file is opened with the course's readers; bad files are listed with the reason and the
fix, and the index (paths, shapes) is saved as JSON for the course's loaders. Exit status 1 if
any file is bad, 2 if the folder is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mricourse.data.prepare import index_ixi, prepare_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(prepare_main(index_ixi, __doc__.split("\n\n")[0]))
