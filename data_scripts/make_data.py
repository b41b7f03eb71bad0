#!/usr/bin/env python
"""Write the course data sets to $MRICOURSE_DATA/<profile> (default ~/.cache/mricourse/<profile>).

    python data_scripts/make_data.py fastmri              # one data set, sized by $MRICOURSE_PROFILE
    python data_scripts/make_data.py all --profile cpu    # every data set of the cpu profile
    python data_scripts/make_data.py brats --profile smoke --out /tmp/data --seed 1 --force
    python data_scripts/make_data.py --list               # data sets and their sizes per profile

Each data set goes to <out>/<name>/ (default out: ~/.cache/mricourse/<profile>) with a manifest.json (seed, parameters, size and SHA-256 of
every file); running again with the same arguments reuses what is there, complete and intact
(checksums verified; a changed file makes it regenerate). --verify hashes every file again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mricourse.data.make import DATASETS, dataset_params, make_dataset, profile_root  # noqa: E402
from mricourse.data.store import manifest_is_valid, verify  # noqa: E402
from mricourse.profiles import PROFILES  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", choices=sorted(DATASETS) + ["all"], help="data set to make")
    parser.add_argument("--profile", choices=PROFILES, help="sizes (default: $MRICOURSE_PROFILE, else cpu/gpu)")
    parser.add_argument(
        "--out",
        type=Path,
        help="data folder (default: $MRICOURSE_DATA/<profile>, $MRICOURSE_DATA defaulting to ~/.cache/mricourse)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="regenerate even if a valid copy exists")
    parser.add_argument("--verify", action="store_true", help="check the SHA-256 of an existing data set and exit")
    parser.add_argument("--list", action="store_true", help="list data sets and sizes per profile")
    args = parser.parse_args(argv)
    if args.list or args.dataset is None:
        for name, spec in DATASETS.items():
            print(name)
            for prof, sizes in spec["sizes"].items():
                print(f"  {prof:6s} {json.dumps(sizes)}")
        return 0
    names = sorted(DATASETS) if args.dataset == "all" else [args.dataset]
    root = args.out or profile_root(args.profile)
    status = 0
    for name in names:
        params = dataset_params(name, args.profile, args.seed)
        if args.verify:
            if not manifest_is_valid(root / name, params):
                print(
                    f"{name}: MISSING, INCOMPLETE OR MADE WITH OTHER PARAMETERS: run without --verify to make it ({root / name})"
                )
                status = 1
                continue
            bad = verify(root / name, full=True)  # every file hashed
            if bad:
                print(f"{name}: CHANGED since written: {', '.join(bad)}; run without --verify to regenerate ({root / name})")
            else:
                print(f"{name}: valid ({root / name})")
            status |= 1 if bad else 0
            continue
        t0 = time.perf_counter()
        make_dataset(name, params, root, force=args.force)
        print(f"{name}: {time.perf_counter() - t0:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
