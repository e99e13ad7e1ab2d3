"""Protocol invariants: LOSO, the composite (CDE) and validation-subject hold-out."""

import numpy as np
import pytest

from mer_keras.protocols import CompositeLOSO, LeaveOneSubjectOut, ValidationSubjects


def _composite():
    groups, databases = [], []
    for db, n_subjects in (("casme2", 3), ("samm", 4), ("smic", 2)):
        for s in range(n_subjects):
            n_samples = 1 + (s % 3)
            groups += [f"{db}/s{s}"] * n_samples
            databases += [db] * n_samples
    order = np.random.default_rng(1).permutation(len(groups))
    return np.array(groups)[order], np.array(databases)[order]


@pytest.mark.parametrize("splitter", [LeaveOneSubjectOut(), CompositeLOSO()])
def test_loso_invariants(splitter):
    groups, _ = _composite()
    X = np.zeros((len(groups), 2))
    folds = list(splitter.split(X, None, groups))
    n_subjects = len(set(groups.tolist()))
    assert len(folds) == n_subjects
    assert splitter.get_n_splits(X, None, groups) == n_subjects
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(groups)))  # every sample tested exactly once
    for (train, test), subject in zip(folds, splitter.subjects(groups)):
        assert set(groups[test].tolist()) == {subject}
        assert subject not in set(groups[train].tolist())
        assert len(train) + len(test) == len(groups)


def test_loso_raises_on_fewer_than_two_subjects():
    with pytest.raises(ValueError, match="at least 2 subjects"):
        list(LeaveOneSubjectOut().split(np.zeros((3, 1)), None, ["a", "a", "a"]))
    with pytest.raises(ValueError, match="groups"):
        list(LeaveOneSubjectOut().split(np.zeros((3, 1)), None, None))


def test_composite_breakdown_counts_subjects_per_database():
    groups, databases = _composite()
    splitter = CompositeLOSO()
    assert splitter.subjects_per_database(groups, databases) == {
        db: n for db, n in zip(splitter.breakdown(databases), [
            len({g for g, d in zip(groups, databases) if d == db})
            for db in splitter.breakdown(databases)])}
    assert sorted(splitter.subjects_per_database(groups, databases).values()) == [2, 3, 4]
    parts = splitter.breakdown(databases)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(groups)))


@pytest.mark.parametrize("mode,size", [("same-database", None), ("same-database", 1),
                                       ("fraction", 0.3), ("fraction", 2)])
def test_validation_never_holds_the_test_subject(mode, size):
    groups, databases = _composite()
    for train, test in CompositeLOSO().split(None, None, groups):
        test_subject = groups[test][0]
        fit, val = ValidationSubjects(mode, size, seed=3).split(train, groups, test_subject,
                                                               databases)
        assert test_subject not in set(groups[val].tolist())
        assert test_subject not in set(groups[fit].tolist())
        assert sorted(np.concatenate([fit, val]).tolist()) == sorted(train.tolist())
        assert set(groups[fit].tolist()).isdisjoint(groups[val].tolist())
        assert len(val) > 0 and len(fit) > 0
        if mode == "same-database":
            assert set(databases[val].tolist()) == {databases[test][0]}
            if size is None:
                others = set(groups[train][databases[train] == databases[test][0]].tolist())
                assert set(groups[val].tolist()) == others


def test_validation_is_reproducible_by_seed_and_rejects_the_test_subject_in_train():
    groups, databases = _composite()
    train = np.flatnonzero(groups != "samm/s0")
    a = ValidationSubjects("fraction", 0.3, seed=5).split(train, groups, "samm/s0")
    b = ValidationSubjects("fraction", 0.3, seed=5).split(train, groups, "samm/s0")
    assert a[1].tolist() == b[1].tolist()
    with pytest.raises(ValueError, match="test subject"):
        ValidationSubjects("fraction", 0.3).split(np.arange(len(groups)), groups, "samm/s0")
    with pytest.raises(ValueError, match="validation mode"):
        ValidationSubjects("random")


def test_leave_one_database_out_tests_each_database_once():
    from mer_keras.protocols import LeaveOneDatabaseOut
    databases = np.array(["casme2", "casme2", "samm", "samm", "samm"])
    folds = list(LeaveOneDatabaseOut().split(databases=databases))
    assert LeaveOneDatabaseOut.fold_names(databases) == ["casme2", "samm"]
    assert [test.tolist() for _, test in folds] == [[0, 1], [2, 3, 4]]
    assert [train.tolist() for train, _ in folds] == [[2, 3, 4], [0, 1]]
    with pytest.raises(ValueError, match="2 databases"):
        list(LeaveOneDatabaseOut().split(databases=databases[:2]))
