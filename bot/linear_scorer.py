"""The project's two fitted models (urgency, intents), scored as plain arrays.

Both are tf-idf character and word n-grams (``bot.urgency.ngram_features``) under a
multinomial logistic regression. scikit-learn 1.1 pays for checks on every call that cost
more than the arithmetic when a call scores one message, which is how Rasa's pipeline and a
quiet gateway call them:

* ``TfidfTransformer.transform`` asks ``hasattr(self, "idf_")``, and ``idf_`` is a property
  that sums the 60,000-100,000-column diagonal matrix each time it is read;
* ``LogisticRegression.decision_function`` multiplies by ``coef_.T``, a transposed view, and
  scipy's sparse-times-dense kernel copies it into a contiguous array per call: 162,758 × 3
  numbers for the urgency model, 162,750 × 26 (34 MB) for the intent model.

Measured on 2 cores, one message per call (2026-12-01, with training on the other core):
the urgency model 2.8 ms through scikit-learn, 0.5 ms here; the intent model 13.1 ms and
0.6 ms. :class:`LinearScorer` counts the n-grams with scikit-learn's own
``CountVectorizer.transform`` and does the rest (sublinear tf, idf, l2 norm, the products,
softmax) on arrays prepared once. It computes the same figures, summed block by block
(rounding apart: 2e-15 at most). A model builds one only if it reproduces scikit-learn on
probe texts (:attr:`LinearModel.scorer`), and keeps scikit-learn's path otherwise;
``tests/test_urgency.py`` and ``tests/test_intent_model.py`` compare the two on every test
set's messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Dict, List, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

# Texts a scorer must score as scikit-learn does before it is used.
PROBES = ("someone is breaking into my house right now", "how do i pay a parking ticket",
          "no quiero vivir más", "", "hellllp!!! 🔥🔥 he has a gun", "ok thanks")


class LinearScorer:
    """P(class) for texts (and extra dense features after the n-grams, if the model was fitted
    with them), from a fitted ``FeatureUnion`` of ``TfidfVectorizer``s and a multinomial
    ``LogisticRegression``. Raises ValueError for settings it does not implement."""

    def __init__(self, union, classifier) -> None:
        if union.transformer_weights:
            raise ValueError("weighted feature unions are not supported")
        self._vectorizers: List[Tuple[object, np.ndarray]] = []
        for _, vectorizer in union.transformer_list:
            if not (vectorizer.use_idf and vectorizer.sublinear_tf and vectorizer.norm == "l2"
                    and not vectorizer.binary):
                raise ValueError(f"unsupported tf-idf settings: {vectorizer!r}")
            # Read once: the property rebuilds this from a diagonal matrix on every access.
            self._vectorizers.append((vectorizer, np.asarray(vectorizer.idf_, np.float64)))
        classes = len(classifier.classes_)
        multinomial = (classifier.multi_class == "multinomial"
                       or (classifier.multi_class == "auto" and classes > 2
                           and classifier.solver != "liblinear"))
        if not multinomial:
            raise ValueError("only a multinomial logistic regression is supported")
        # Contiguous once, so the sparse product does not copy it per call; one slice of rows
        # per block of features, so the blocks are never stacked into one matrix.
        weights = np.ascontiguousarray(classifier.coef_.T, dtype=np.float64)
        bounds = np.cumsum([0] + [len(idf) for _, idf in self._vectorizers])
        self._block_weights = [weights[lo:hi] for lo, hi in pairwise(bounds)]
        self._dense_weights = weights[bounds[-1]:]
        self._bias = np.asarray(classifier.intercept_, dtype=np.float64)

    @property
    def dense_width(self) -> int:
        """How many dense features the model reads after the n-grams."""
        return self._dense_weights.shape[0]

    def proba(self, texts: Sequence[str], dense: np.ndarray | None = None) -> np.ndarray:
        """Rows of class probabilities in the classifier's ``classes_`` order."""
        from sklearn.utils.extmath import softmax

        texts = list(texts)  # read twice below; an iterator would be empty the second time
        if dense is None:
            dense = np.zeros((len(texts), 0))
        scores = np.asarray(dense, dtype=np.float64) @ self._dense_weights + self._bias
        for (vectorizer, idf), weights in zip(self._vectorizers, self._block_weights,
                                              strict=True):
            scores += self._tfidf(vectorizer, idf, texts) @ weights
        return softmax(scores, copy=False)

    @staticmethod
    def _tfidf(vectorizer, idf: np.ndarray, texts: Sequence[str]):
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        # The counting step of TfidfVectorizer.transform, without its idf_ check.
        counts = CountVectorizer.transform(vectorizer, list(texts)).astype(np.float64)
        np.log(counts.data, counts.data)
        counts.data += 1
        counts.data *= idf[counts.indices]
        return normalize(counts, norm="l2", copy=False)


@dataclass
class LinearModel:
    """Fitted n-gram features and classifier; :meth:`raw_proba` scores them through
    :class:`LinearScorer` when it reproduces scikit-learn, else through scikit-learn."""

    features: object
    classifier: object

    def raw_proba(self, texts: Sequence[str], dense: np.ndarray | None = None) -> np.ndarray:
        """Rows of class probabilities in the classifier's ``classes_`` order."""
        scorer = self.scorer
        if scorer is not None:
            return scorer.proba(texts, dense)
        return self.sklearn_proba(texts, dense)

    def sklearn_proba(self, texts: Sequence[str], dense: np.ndarray | None = None) -> np.ndarray:
        """scikit-learn's own path (the reference)."""
        return self.classifier.predict_proba(with_dense(self.features.transform(list(texts)),
                                                        dense))

    @cached_property
    def scorer(self) -> LinearScorer | None:
        """The model as plain arrays, or None if it does not reproduce scikit-learn on
        PROBES (with the dense features, if any, set to 0.5 so they take part)."""
        try:
            scorer = LinearScorer(self.features, self.classifier)
            dense = np.full((len(PROBES), scorer.dense_width), 0.5)
            difference = np.abs(scorer.proba(PROBES, dense)
                                - self.sklearn_proba(PROBES, dense)).max()
        except (ValueError, AttributeError) as exc:
            logger.warning("%s is scored by scikit-learn: %s", type(self).__name__, exc)
            return None
        if difference > 1e-9:
            logger.warning("the array scorer differs from scikit-learn by %.2g on %s: not "
                           "used", difference, type(self).__name__)
            return None
        return scorer

    def __getstate__(self) -> Dict:
        # The scorer is derived: rebuilt after loading, never stored in a model file.
        return {"features": self.features, "classifier": self.classifier}


def with_dense(grams, dense: np.ndarray | None):
    """The n-gram matrix with the dense features (if any) as its last columns: what the
    classifier is fitted on."""
    if dense is None or not dense.shape[1]:
        return grams
    import scipy.sparse as sparse

    return sparse.hstack([grams, sparse.csr_matrix(dense)]).tocsr()
