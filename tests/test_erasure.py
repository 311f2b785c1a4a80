"""Right to erasure leaves no copy in any file the service writes (issue 12): the SQLite
database, its write-ahead log and the saved FAISS index are searched for the erased template's
bytes and its face thumbnail's bytes.

Templates are random unit vectors and the thumbnail random bytes (synthetic, labelled so): the
test is about where bytes end up, not about faces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biometric.gallery.service import Gallery, IndexBackend
from biometric.store.db import make_engine, migrate

DIM = 128


def _gallery(db: Path, index_dir: Path) -> Gallery:
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    # The default backend: one index file shared by the workers, mapped.
    searcher = IndexBackend().searcher(engine, "synthetic", DIM, index_dir / "synthetic.faiss")
    return Gallery(
        engine,
        searcher,
        model="synthetic",
        model_version="test",
        dim=DIM,
        duplicate_threshold=0.9,
        duplicate_fmr=1e-6,
    )


def _occurrences(root: Path, needles: dict[str, bytes]) -> dict[str, int]:
    """Bytes of each needle found, summed over every file under ``root``."""
    found = dict.fromkeys(needles, 0)
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for name, needle in needles.items():
                found[name] += data.count(needle) * len(needle)
    return found


def test_erase_leaves_no_template_or_thumbnail_bytes(tmp_path: Path) -> None:
    gallery = _gallery(tmp_path / "store.db", tmp_path / "index")
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    thumbs = [rng.bytes(2048) for _ in range(3)]
    for n in range(3):
        gallery.enrol(f"70000000000{n}", vectors[n], thumbnail=thumbs[n])
    gallery.save_index()  # a saved index holding every template, as after a restart
    needles = {
        "template": vectors[1].astype("<f4").tobytes(),
        "thumbnail": thumbs[1],
        "kept_template": vectors[0].astype("<f4").tobytes(),
    }
    before = _occurrences(tmp_path, needles)
    assert before["template"] and before["thumbnail"]  # the search can find them

    assert gallery.erase("700000000001") == 1
    after_erase = _occurrences(tmp_path, needles)
    gallery.save_index()  # shutdown
    after_save = _occurrences(tmp_path, needles)
    print(
        f"\nerased template/thumbnail bytes in files: before erase {before}, "
        f"after erase {after_erase}, after shutdown save {after_save}"
    )
    assert after_erase["template"] == 0 and after_erase["thumbnail"] == 0
    assert after_save["template"] == 0 and after_save["thumbnail"] == 0
    assert after_save["kept_template"] > 0  # the others are still there
    reopened = _gallery(tmp_path / "store.db", tmp_path / "index")
    assert reopened.index_matches_store() and len(reopened.index_ids()) == 2
