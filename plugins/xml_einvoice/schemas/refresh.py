"""Copy the official artefacts from the reference set into this folder, unmodified.

Usage: python3 plugins/xml_einvoice/schemas/refresh.py [--from DIR]
(DIR defaults to ../shared/standards next to the repository, or $GATEWAY_STANDARDS_DIR).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
# (source relative to the reference set, target relative to this folder)
TREES = [
    ("ubl-2.1/xsd/maindoc", "ubl-2.1/xsd/maindoc"),
    ("ubl-2.1/xsd/common", "ubl-2.1/xsd/common"),
    ("cii-d16b/xsd/uncoupled", "cii-d16b/xsd/uncoupled"),
    ("schematron", "schematron"),
]
FILES = [("ubl-2.1/README.md", "ubl-2.1/README.md"),
         ("cii-d16b/README.md", "cii-d16b/README.md")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy(src: Path, dst: Path) -> bool:
    if dst.exists() and dst.read_bytes() == src.read_bytes():
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.chmod(0o644)
    tmp.replace(dst)
    return True


def main() -> int:
    default = os.environ.get("GATEWAY_STANDARDS_DIR", str(REPO.parent / "shared" / "standards"))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="source", default=default, type=Path)
    args = parser.parse_args()
    source: Path = args.source
    if not (source / "schematron").is_dir():
        print(f"error: {source} is not the reference set (no schematron/ folder)", file=sys.stderr)
        return 2
    changed = 0
    pairs = list(FILES)
    for src_dir, dst_dir in TREES:
        wanted = {p.relative_to(source / src_dir) for p in (source / src_dir).rglob("*")
                  if p.is_file()}
        pairs += [(f"{src_dir}/{rel}", f"{dst_dir}/{rel}") for rel in sorted(wanted)]
        for existing in (HERE / dst_dir).rglob("*") if (HERE / dst_dir).exists() else []:
            if existing.is_file() and existing.relative_to(HERE / dst_dir) not in wanted:
                existing.unlink()
                print(f"removed {existing.relative_to(HERE)}")
                changed += 1
    for src_rel, dst_rel in pairs:
        if copy(source / src_rel, HERE / dst_rel):
            print(f"updated {dst_rel}  sha256 {digest(HERE / dst_rel)}")
            changed += 1
    print(f"{changed} file(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
