"""The similarity scale used everywhere in openlfr.

Templates are a face model's embeddings (128-D for both bundled models) scaled to unit
length, and the similarity of two templates is their **cosine similarity**: 1.0 for
identical templates, about 0 for unrelated faces, never above 1. The bundled dlib ResNet's
templates share a common direction, so its scores are compressed: on LFW, same-person pairs
have a median of 0.958 (5th percentile 0.928) and different people a median of 0.840 (99th
percentile 0.909).
Each model has its own scale, so each has its own default threshold in the model registry
(:mod:`openlfr.face.registry`); an operating threshold must come from calibration for the
model, the watchlist size and the tolerated false-alert rate.
"""

from __future__ import annotations

import numpy as np



def to_template(embeddings: np.ndarray) -> np.ndarray:
    """Scale embeddings (``(D,)`` or ``(N, D)``) to unit length, as float32."""
    emb = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=-1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity between unit templates: ``(D,)``/``(N, D)`` against ``(M, D)``."""
    return np.asarray(a, dtype=np.float32) @ np.asarray(b, dtype=np.float32).T


def fuse(templates: np.ndarray) -> np.ndarray:
    """One template standing for several of the same face (mean direction, unit length)."""
    return to_template(np.asarray(templates, dtype=np.float32).mean(axis=0))
