"""Match thresholds shared by safety lists, scrub and decontamination (a light module: the CLI imports it)."""

from __future__ import annotations

PDQ_MATCH_DISTANCE = 31  # the PDQ authors' (Meta ThreatExchange) suggested match distance, of 256 bits
EVAL_MIN_SIMILARITY = (
    0.95  # CLIP cosine of an eval duplicate (the image-dedup threshold); calibrate per model
)
