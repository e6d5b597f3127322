"""Stage `thumbnails`: halve every PGM image of a directory tree (2x2 box filter).

Usage: python src/thumbnails.py SRC_DIR/ DST_DIR/

Reads every *.pgm file below SRC_DIR (at any depth), writes a half-size copy to
the same relative path below DST_DIR, and writes DST_DIR/index.json listing the
thumbnails with their sizes. Standard library only.
"""

import json
import os
import sys


def read_pgm(path):
    """Read a plain (ASCII, "P2") PGM file: returns (width, height, maxval, rows)."""
    tokens = []
    with open(path, encoding="ascii") as f:
        for line in f:
            tokens.extend(line.split("#", 1)[0].split())
    if not tokens or tokens[0] != "P2":
        raise ValueError(f"{path}: not a plain PGM (P2) file")
    width, height, maxval = (int(t) for t in tokens[1:4])
    pixels = [int(t) for t in tokens[4:]]
    if len(pixels) != width * height:
        raise ValueError(f"{path}: expected {width * height} pixels, found {len(pixels)}")
    return width, height, maxval, [pixels[r * width : (r + 1) * width] for r in range(height)]


def halve(rows):
    """2x2 box filter; an odd last row or column is dropped."""
    return [
        [(a[x] + a[x + 1] + b[x] + b[x + 1] + 2) // 4 for x in range(0, len(a) - 1, 2)]
        for a, b in zip(rows[0::2], rows[1::2])
    ]


def write_pgm(path, maxval, rows, comment):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(f"P2\n# {comment}\n{len(rows[0])} {len(rows)}\n{maxval}\n")
        for row in rows:
            f.write(" ".join(str(v) for v in row) + "\n")


def main(src, dst):
    index = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".pgm"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            width, height, maxval, rows = read_pgm(path)
            small = halve(rows)
            write_pgm(os.path.join(dst, rel), maxval, small, f"thumbnail of {rel}")
            index.append({"path": rel, "source": [width, height], "thumbnail": [len(small[0]), len(small)]})
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "index.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(index, indent=2) + "\n")
    print(f"thumbnails: {len(index)} images {src} -> {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
