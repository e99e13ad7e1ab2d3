"""Evaluation protocols as scikit-learn splitters: LOSO, the MEGC2019 composite (CDE), STRCN's
leave-videos-out (LOVO), validation.

Every splitter follows ``split(X, y, groups)`` / ``get_n_splits(X, y, groups)`` and yields integer
index arrays, so a protocol can be handed to anything that takes a scikit-learn CV object. The
groups are the prefixed subject ids of the cache (``"casme2/sub01"``), so subjects of different
databases never collide.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence, Union

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut


def _groups_array(groups, n: Optional[int] = None) -> np.ndarray:
    if groups is None:
        raise ValueError("the 'groups' parameter should not be None: pass each sample's subject")
    groups = np.asarray(groups).ravel()
    if n is not None and groups.size != n:
        raise ValueError(f"groups has {groups.size} entries but X has {n} samples")
    return groups


class LeaveOneSubjectOut:
    """Leave-one-subject-out: each fold tests every sample of one subject and trains on the rest.

    A thin wrapper of :class:`sklearn.model_selection.LeaveOneGroupOut` that raises on fewer than
    two subjects and yields folds in the order subjects first appear (so fold ``i`` of a run is
    stable across sklearn versions), and can name each fold's test subject.
    """

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """The number of subjects in ``groups``."""
        groups = _groups_array(groups)
        return len(np.unique(groups))

    def subjects(self, groups) -> list[str]:
        """The test subject of each fold, in fold order."""
        groups = _groups_array(groups)
        return [str(g) for g in dict.fromkeys(groups.tolist())]

    def split(self, X=None, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` for each subject, in order of first appearance.

        Raises:
            ValueError: fewer than two subjects, or ``groups`` missing or of the wrong length.
        """
        n = None if X is None else len(X)
        groups = _groups_array(groups, n)
        unique = self.subjects(groups)
        if len(unique) < 2:
            raise ValueError(
                f"leave-one-subject-out needs at least 2 subjects, got {len(unique)} ({unique})")
        order = {subject: i for i, subject in enumerate(unique)}
        codes = np.array([order[str(g)] for g in groups])
        # LeaveOneGroupOut iterates over sorted group codes, i.e. our first-appearance order.
        yield from LeaveOneGroupOut().split(np.zeros((groups.size, 1)), None, codes)


class CompositeLOSO(LeaveOneSubjectOut):
    """The MEGC2019 composite database evaluation (CDE): LOSO over the composite's subjects.

    The splits are plain LOSO over the prefixed subject ids of every database together (68 folds
    for the 442-sample composite). :meth:`breakdown` gives the per-database subsets of the pooled
    predictions, on which the per-database scores are computed.
    """

    @staticmethod
    def breakdown(databases) -> dict[str, np.ndarray]:
        """``{database: indices of its samples}``, in order of first appearance."""
        databases = np.asarray(databases).ravel()
        return {str(db): np.flatnonzero(databases == db)
                for db in dict.fromkeys(databases.tolist())}

    def subjects_per_database(self, groups, databases) -> dict[str, int]:
        """How many LOSO folds (subjects) each database contributes."""
        groups = _groups_array(groups)
        databases = np.asarray(databases).ravel()
        return {db: len(np.unique(groups[idx])) for db, idx in self.breakdown(databases).items()}


class LeaveOneDatabaseOut:
    """Train on every other database, test on one: Micro-Attention's HDE (Sec 4.2), "trained on
    CASME II and tested on SAMM" and the reverse, as one run of two folds.

    Each fold is named by its test database; every sample is tested exactly once, so the
    per-database breakdown of the pooled predictions gives each direction's scores.
    """

    @staticmethod
    def fold_names(databases) -> list[str]:
        """The test database of each fold, in order of first appearance."""
        return [str(d) for d in dict.fromkeys(np.asarray(databases).ravel().tolist())]

    def split(self, X=None, y=None, groups=None, databases=None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` per database of ``databases`` (one entry per sample).

        Raises:
            ValueError: fewer than two databases.
        """
        databases = np.asarray(databases).ravel()
        names = self.fold_names(databases)
        if len(names) < 2:
            raise ValueError(f"leave-one-database-out needs at least 2 databases, got {names}")
        for name in names:
            yield np.flatnonzero(databases != name), np.flatnonzero(databases == name)


class LeaveVideosOut:
    """Leave-one-video-out as STRCN runs it (Sec IV-B): each fold tests 5 % of the videos.

    STRCN: "each time 5% of the videos are left out for testing". The number of repetitions is not
    given; read as ``n_folds`` = 20 disjoint folds of 5 %, stratified by class, so every video is
    tested exactly once (PAPER_NOTES 5.7-8). Unlike LOSO, the other videos of a test video's
    subject are in training: that is what the protocol measures.

    Args:
        n_folds: folds (20 folds of 5 %).
        seed: shuffles the videos before the stratified split.
    """

    def __init__(self, n_folds: int = 20, seed: int = 0):
        if int(n_folds) < 2:
            raise ValueError(f"leave-videos-out needs at least 2 folds, got {n_folds}")
        self.n_folds, self.seed = int(n_folds), int(seed)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_folds

    def fold_names(self) -> list[str]:
        """``lovo/01`` ... : the name of each fold, in fold order."""
        return [f"lovo/{i + 1:02d}" for i in range(self.n_folds)]

    def split(self, X=None, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` of each fold; ``y`` (the labels) stratifies them.

        Raises:
            ValueError: fewer videos than folds, or no labels.
        """
        import warnings

        from sklearn.model_selection import StratifiedKFold

        if y is None:
            raise ValueError("leave-videos-out stratifies by class: pass the labels as y")
        y = np.asarray(y).ravel()
        if y.size < self.n_folds:
            raise ValueError(f"leave-videos-out with {self.n_folds} folds needs at least "
                             f"{self.n_folds} videos, got {y.size}")
        splitter = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.seed)
        with warnings.catch_warnings():
            # a class with fewer videos than folds is spread over as many folds as it can fill
            warnings.filterwarnings("ignore", message="The least populated class")
            folds = list(splitter.split(np.zeros((y.size, 1)), y))
        yield from folds


class ValidationSubjects:
    """Hold out whole training subjects as a validation set, never the test subject.

    Given the training part of one LOSO fold, chooses validation subjects among the training
    subjects only. Two rules:

    * ``"same-database"``: the other subjects of the test subject's database (as Dual-Inception
      did, `xly135846/MEGC2019`), all of them when ``size`` is None, else a random ``size`` of them.
    * ``"fraction"``: a random ``size`` (a fraction in (0, 1), or a count) of all training
      subjects.

    At least one subject stays in training and, where the rule allows, at least one goes to
    validation.

    Args:
        mode: ``"same-database"`` or ``"fraction"``.
        size: None, a fraction in (0, 1), or a number of subjects.
        seed: seeds the random choice (pass the fold's seed).
    """

    MODES = ("same-database", "fraction")

    def __init__(self, mode: str = "fraction", size: Union[None, int, float] = 0.1,
                 seed: int = 0):
        if mode not in self.MODES:
            raise ValueError(f"validation mode {mode!r} is not one of {self.MODES}")
        if mode == "fraction" and size is None:
            raise ValueError("the 'fraction' validation mode needs a size")
        if size is not None and (size <= 0 or (isinstance(size, float) and size >= 1)):
            raise ValueError(
                f"validation size {size!r} must be a count >= 1 or a fraction in (0, 1)")
        self.mode = mode
        self.size = size
        self.seed = seed

    def _count(self, n_candidates: int) -> int:
        if self.size is None:
            return n_candidates
        if isinstance(self.size, float):
            return max(1, math.ceil(self.size * n_candidates))
        return min(int(self.size), n_candidates)

    def split(self, train_idx: Sequence[int], groups, test_subject: str, databases=None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Split ``train_idx`` into ``(fit_idx, val_idx)`` by whole subjects.

        Args:
            train_idx: the training indices of one fold.
            groups: every sample's subject id (the whole data set, not only ``train_idx``).
            test_subject: the fold's test subject; it is never put in either part.
            databases: every sample's database; needed by ``"same-database"``.

        Raises:
            ValueError: ``train_idx`` contains the test subject, or no subject is left to validate.
        """
        train_idx = np.asarray(train_idx, dtype=np.int64)
        groups = _groups_array(groups)
        train_groups = groups[train_idx]
        if np.any(train_groups == test_subject):
            raise ValueError(f"the training indices contain the test subject {test_subject!r}")
        subjects = list(dict.fromkeys(train_groups.tolist()))
        if self.mode == "same-database":
            if databases is None:
                raise ValueError("the 'same-database' validation needs each sample's database")
            databases = np.asarray(databases).ravel()
            test_db = databases[groups == test_subject]
            if test_db.size == 0:
                raise ValueError(f"test subject {test_subject!r} has no sample in groups")
            train_dbs = databases[train_idx]
            candidates = list(dict.fromkeys(train_groups[train_dbs == test_db[0]].tolist()))
        else:
            candidates = subjects
        # keep at least one training subject
        count = min(self._count(len(candidates)), len(subjects) - 1)
        if count < 1:
            raise ValueError(
                f"no validation subject can be held out for test subject {test_subject!r} "
                f"(mode {self.mode!r}, {len(candidates)} candidate(s), {len(subjects)} training "
                "subject(s))")
        rng = np.random.default_rng(self.seed)
        chosen = set(rng.permutation(np.array(candidates, dtype=object))[:count].tolist())
        is_val = np.array([g in chosen for g in train_groups], dtype=bool)
        return train_idx[~is_val], train_idx[is_val]
