#!/usr/bin/env python3
"""Convert the two real data sets attnsvm ships into .npy files (run once, at development time).

Inputs are the PyPI wheels that bundle the data (nothing else is read, nothing is downloaded here):

    pip download scikit-learn==1.9.1 --no-deps -d wheels    # sklearn/datasets/data/digits.csv.gz
    pip download aeon==1.6.0 --no-deps -d wheels             # aeon/datasets/data/JapaneseVowels/*.ts
    python3 data/convert.py wheels                           # needs numpy only

Writes data/digits/{X,y}.npy and data/japanese_vowels/{X,len,y}_{train,test}.npy (see data/README.md),
and prints the SHA-256 of every input and output so the provenance table can be checked.
"""

import glob
import gzip
import hashlib
import io
import os
import sys
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def member(wheel_glob: str, name: str) -> bytes:
    (wheel,) = glob.glob(wheel_glob)
    with zipfile.ZipFile(wheel) as z:
        data = z.read(name)
    print(f"{os.path.basename(wheel)}:{name} sha256={sha(data)}")
    return data


def save(path: str, array: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, array)
    with open(path, "rb") as f:
        print(f"{os.path.relpath(path, HERE)} {array.dtype} {array.shape} sha256={sha(f.read())}")


def digits(wheels: str) -> None:
    raw = gzip.decompress(member(f"{wheels}/scikit_learn-1.9.1-*.whl", "sklearn/datasets/data/digits.csv.gz"))
    table = np.loadtxt(io.StringIO(raw.decode()), delimiter=",")
    assert table.shape == (1797, 65), table.shape
    x = table[:, :64].reshape(-1, 8, 8)
    assert x.min() == 0 and x.max() == 16 and np.all(x == np.round(x))
    save(f"{HERE}/digits/X.npy", x.astype(np.float32))  # integers 0..16, exact in float32
    save(f"{HERE}/digits/y.npy", table[:, 64].astype(np.int32))


def parse_ts(text: str):
    """A multivariate, unequal-length .ts file: one line per case, channels separated by ':'."""
    series, labels = [], []
    body = text.split("@data", 1)[1]
    for line in body.strip().splitlines():
        *channels, label = line.strip().split(":")
        rows = [np.array([float(v) for v in c.split(",")]) for c in channels]
        length = len(rows[0])
        assert all(len(r) == length for r in rows)
        series.append(np.stack(rows, axis=1))  # (length, channels)
        labels.append(int(label))
    return series, labels


def japanese_vowels(wheels: str) -> None:
    for split, cases in (("train", 270), ("test", 370)):
        name = f"aeon/datasets/data/JapaneseVowels/JapaneseVowels_{split.upper()}.ts"
        series, labels = parse_ts(member(f"{wheels}/aeon-1.6.0-*.whl", name).decode())
        assert len(series) == cases, len(series)
        lengths = np.array([len(s) for s in series], dtype=np.int32)
        assert lengths.min() >= 7 and lengths.max() <= 29
        x = np.zeros((cases, 29, 12), dtype=np.float32)  # zero padding after each series
        for i, s in enumerate(series):
            x[i, : len(s)] = s
        y = np.array(labels, dtype=np.int32) - 1  # classes 1..9 -> 0..8
        assert sorted(set(y.tolist())) == list(range(9))
        save(f"{HERE}/japanese_vowels/X_{split}.npy", x)
        save(f"{HERE}/japanese_vowels/len_{split}.npy", lengths)
        save(f"{HERE}/japanese_vowels/y_{split}.npy", y)


if __name__ == "__main__":
    wheels = sys.argv[1] if len(sys.argv) > 1 else "wheels"
    digits(wheels)
    japanese_vowels(wheels)
