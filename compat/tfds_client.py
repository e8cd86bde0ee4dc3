"""Run inside the TFDS venv (compat/requirements/tfds.txt), never with openpairs importable: TFDS's own
`laion400m` builder builds one config from an `openpairs export --format tfds` folder with Beam's
DirectRunner, then `tfds.load` reads it back and every example is dumped for the test to compare.

    python tfds_client.py MANUAL_DIR NUM_SHARDS CONFIG DATA_DIR DUMP_DIR

This is what a user runs (docs/tfds.md); only the dump at the end is the test's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds


def build(manual_dir: str, num_shards: int, config: str, data_dir: str) -> None:
    """Build `config` of laion400m from `manual_dir`, with the builder's num_shards set to the export's."""
    # The embeddings config asks for LAION's URLs: these checksums name the files in manual_dir instead.
    tfds.download.add_checksums_dir(f"{manual_dir}/checksums")
    builder = tfds.builder(f"laion400m/{config}", data_dir=data_dir)
    # The builder takes no option for it and refuses a custom config named like its own: set its config's
    # num_shards (41455 image shards and 410 embedding shards in LAION's release) to the export's.
    builder.builder_config.num_shards = num_shards
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir,
            try_download_gcs=False,
            beam_options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"]),
        )
    )


def dump(config: str, data_dir: str, out: Path) -> int:
    """Write every example `tfds.load` yields: scalars as JSON lines, arrays and image bytes as .npz."""
    decoders = {"image": tfds.decode.SkipDecoding()} if config == "images" else None
    dataset = tfds.load(
        f"laion400m/{config}", split="train", data_dir=data_dir, download=False, decoders=decoders
    )
    rows, arrays = [], {}
    for i, example in enumerate(tfds.as_numpy(dataset)):
        row = {}
        for name, value in example.items():
            if name == "image":
                arrays[f"bytes_{i}"] = np.frombuffer(value, dtype=np.uint8)
                arrays[f"pixels_{i}"] = tfds.features.Image().decode_example(value).numpy()
                arrays[f"accurate_{i}"] = _decode_accurately(value)
            elif name.endswith("_embedding"):
                arrays[f"{name}_{i}"] = value
            else:
                row[name] = value.decode("utf-8") if isinstance(value, bytes) else value.item()
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{config}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    np.savez(out / f"{config}.npz", **arrays)
    return len(rows)


def _decode_accurately(data: bytes) -> np.ndarray:
    """TensorFlow's decode with the accurate integer IDCT (libjpeg's default, PIL's): TFDS's own decode
    uses the fast one, whose pixels differ from an accurate decoder's by a few levels."""
    if data[:2] == b"\xff\xd8":
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE").numpy()
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def main() -> None:
    manual_dir, num_shards, config, data_dir, out = sys.argv[1:6]
    build(manual_dir, int(num_shards), config, data_dir)
    print(f"laion400m/{config}: {dump(config, data_dir, Path(out))} examples (tfds {tfds.__version__})")


if __name__ == "__main__":
    main()
