"""Training: only when the data, domain or config changed, and reproducibly."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

# What the model is made from; a change to any of these means a new model.
TRAINING_INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/rules", "bot/intent_model.py",
                   "bot/nlu_component.py")
MODEL_PREFIX = "beacon-"
# Determinism: scikit-learn's solvers are seeded in the code; these keep Rasa's own steps
# (and any TensorFlow it touches) reproducible.
TRAINING_ENV = {
    "PYTHONHASHSEED": "0",
    "TF_DETERMINISTIC_OPS": "1",
    "TF_CUDNN_DETERMINISTIC": "1",
    "TF_INTER_OP_PARALLELISM_THREADS": "1",
    "TF_INTRA_OP_PARALLELISM_THREADS": "2",
    "RASA_TELEMETRY_ENABLED": "false",
}


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A hash of every training input and the versions that read them.

    The versions come from the installed packages' metadata: importing spaCy here (for
    ``spacy.__version__``) pulled in TensorFlow through thinc, 2-3 s of every start-up's
    "is the model current?" check (issue 9's cold start)."""
    rasa, spacy = version("rasa"), version("spacy")
    digest = hashlib.sha256(f"rasa {rasa} spacy {spacy}".encode())
    for name in TRAINING_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_path(root: Path = PROJECT_ROOT, models_dir: Path | None = None) -> Path:
    """Where the model for the current inputs is (or will be)."""
    return (models_dir or root / "models") / f"{MODEL_PREFIX}{fingerprint(root)}.tar.gz"


def train(root: Path = PROJECT_ROOT, force: bool = False) -> Path:
    """Train unless a model for exactly these inputs exists; return the model's path.

    The urgency model is trained first (the gateway, the CLI and Rasa's pipeline component
    all load it), then the intent model's cross-validation chooses its settings (Rasa's
    component reads them when it trains)."""
    from bot import intent_model, urgency

    urgency.train(root, force=force)
    intent_model.cross_validate(root, force=force)
    target = model_path(root)
    if target.exists() and not force:
        logger.info("model is up to date: %s", target)
        return target
    logger.info("training %s", target.name)
    subprocess.run(
        [
            sys.executable, "-m", "rasa", "train",
            "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
            "--out", str(target.parent), "--fixed-model-name", target.name[: -len(".tar.gz")],
            "--force",
        ],
        cwd=root,
        env={**os.environ, **TRAINING_ENV},
        check=True,
        stdout=sys.stderr,
    )
    return target


def current_model(root: Path = PROJECT_ROOT) -> Path:
    """The model for the current inputs; a clear error when it has not been trained."""
    target = model_path(root)
    if not target.exists():
        raise FileNotFoundError(
            f"no trained model for the current data ({target.name}); run `python -m bot train`"
        )
    return target
