"""The sample index of every protocol the reproduced papers use, built from annotation files alone.

A :class:`Protocol` says which databases it draws on and how each database's own label (its
emotion, or its MEGC2018 objective class) maps to the protocol's classes. :func:`build_index` reads
the databases with the readers of :mod:`data_prep.datasets`, maps every sample, and keeps a list of
every sample left out, with the reason: an emotion the protocol drops ("others" in CDE), an apex
the protocol cannot use, or a bad row.

Where a paper's count differs from what the files give (annotations/REPORT.md, points A-E), the
index follows the files and the protocol's description says by how much and why.

Apex rule. Only ``cde`` needs the annotated apex: the official MEGC2019 list leaves out exactly the
two CASME II clips whose apex is missing (sub04/EP12_01f) or equals the onset (sub05/EP09_05f), so
``cde`` leaves out every sample with an unusable apex. The other protocols' published counts keep
those two clips (CASME II 4-class 255, 5-class 246, CDMER 129, objective classes 185), so there
the sample stays, with ``apex`` emptied and ``apex_source="none"``: the pipeline then estimates the
apex from the frames, as it does for SMIC. The ``note`` column says so.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Mapping, Optional, Union

from data_prep.datasets import casme2 as casme2_reader
from data_prep.datasets import samm as samm_reader
from data_prep.datasets import smic as smic_reader
from data_prep.datasets.frames import apex_problem
from data_prep.errors import DataPrepError, Problems
from data_prep.samples import Sample

ROW_COLUMNS = ("database", "subject", "sample", "onset", "apex", "offset", "emotion", "label",
               "apex_source", "objective_class", "source", "note")
EXCLUDED_COLUMNS = ROW_COLUMNS + ("reason",)
OBJECTIVE_NAMES = ("I", "II", "III", "IV", "V", "VI", "VII")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One evaluation protocol's sample set.

    Attributes:
        name: the registry key (``"cde"``).
        databases: the databases it draws on, in index order (``"casme2"``, ``"samm"``, ``"smic"``,
            ``"smic_vis"``, ``"smic_nir"``).
        classes: the class names, in label order.
        mapping: database -> {database label -> class name}. The database label is the lower-case
            emotion, or the objective class as a string (``"1"``) when ``label_from`` says so.
            A label that is not a key is left out of the protocol (not an error).
        description: what the protocol is, the paper and table it comes from, and how the counts
            the files give differ from the published ones.
        label_from: ``"emotion"`` or ``"objective_class"``.
        drop_bad_apex: leave out samples whose annotated apex is missing, outside onset..offset or
            equal to the onset (only ``cde``; see the module docstring).
        expected: the counts the annotation files give, per database (pinned by the tests).
    """

    name: str
    databases: tuple
    classes: tuple
    mapping: Mapping
    description: str
    label_from: str = "emotion"
    drop_bad_apex: bool = False
    expected: Mapping = dataclasses.field(default_factory=dict)

    def class_of(self, sample: Sample) -> Optional[str]:
        """The protocol class of ``sample``, or ``None`` if the protocol leaves it out."""
        key = sample.emotion if self.label_from == "emotion" else (
            None if sample.objective_class is None else str(sample.objective_class))
        return self.mapping.get(sample.database, {}).get(key)


def _objective(n: int = 5) -> dict:
    return {str(i + 1): OBJECTIVE_NAMES[i] for i in range(n)}


_CDE_CASME2 = {"disgust": "negative", "repression": "negative", "happiness": "positive",
               "surprise": "surprise"}
_SAMM_3 = {"anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
           "sadness": "negative", "happiness": "positive", "surprise": "surprise"}
_SMIC_3 = {"negative": "negative", "positive": "positive", "surprise": "surprise"}
_CASME2_NEG = {"disgust": "negative", "sadness": "negative", "fear": "negative",
               "happiness": "positive", "surprise": "surprise"}
_THREE = ("negative", "positive", "surprise")

_PROTOCOLS = [
    Protocol(
        name="cde",
        databases=("casme2", "samm", "smic"),
        classes=_THREE,
        mapping={"casme2": _CDE_CASME2, "samm": _SAMM_3, "smic": _SMIC_3},
        drop_bad_apex=True,
        expected={"casme2": 145, "samm": 133, "smic": 164},
        description=(
            "MEGC2019 composite database evaluation (CDE): 442 = 250/109/83 over 68 subjects "
            "(FR Table 9, MTMNet Table 1, OFF-ApexNet Table 1). CASME II negative = disgust + "
            "repression (FR Table 9 footnote), SAMM negative = anger, contempt, disgust, fear, "
            "sadness; happiness -> positive; fear/sadness (CASME II) and others are dropped. "
            "The rule alone gives CASME II 147; leaving out clips without a usable apex "
            "(sub04/EP12_01f apex '/', sub05/EP09_05f onset == apex; REPORT.md A) gives the "
            "official 145 = 88/32/25 (24 subjects). SAMM v2 gives 133 = 92/26/15 (28 subjects); "
            "OFF-ApexNet's 441/132 is not reproducible from any file (PAPER_NOTES 0.2). SMIC-HS: "
            "164 = 70/51/43 from the SMIC folders or the MEGC2019 list; the SMIC-E sheet has only "
            "162 (69/51/42, REPORT.md E).")),
    Protocol(
        name="casme2_5class",
        databases=("casme2",),
        classes=("happiness", "surprise", "disgust", "repression", "others"),
        mapping={"casme2": {e: e for e in ("happiness", "surprise", "disgust", "repression",
                                           "others")}},
        expected={"casme2": 246},
        description=(
            "CASME II 5 emotion classes, single-database LOSO (FR Table 13; MTMNet Sec 4.1). "
            "Published 247 = 32/25/64/27/99; CASME2-coding-20140508 gives 246 = 32/25/63/27/99 "
            "(26 subjects): no coding found has 64 disgust (REPORT.md C). 20190701 gives 249 "
            "(+3 surprise, REPORT.md B). Fear and sadness are left out.")),
    Protocol(
        name="casme2_4class",
        databases=("casme2",),
        classes=("negative", "positive", "surprise", "others"),
        mapping={"casme2": {**_CASME2_NEG, "repression": "others", "others": "others"}},
        expected={"casme2": 255},
        description=(
            "CASME II 4 classes (STRCN; FR Table 12): negative = disgust + sadness + fear, "
            "positive = happiness, surprise, others = repression + others. Published 256 = "
            "73/32/25/126; CASME2-coding-20140508 gives 255 = 72/32/25/126 (26 subjects). The "
            "published set evidently adds the raw clip sub24/EP02_07 (sadness), which no coding "
            "file lists (REPORT.md C).")),
    Protocol(
        name="samm_5class",
        databases=("samm",),
        classes=OBJECTIVE_NAMES[:5],
        mapping={"samm": _objective()},
        label_from="objective_class",
        expected={"samm": 68},
        description=(
            "SAMM objective classes I-V (MEGC2018), single-database LOSO as in Micro-Attention "
            "(Sec 4.2, Table 1, which names them happiness, surprise, anger, disgust, sadness): "
            "68 = 24/13/20/8/3, as published, over 21 subjects. Classes VI and VII are left out.")),
    Protocol(
        name="samm_4class",
        databases=("samm",),
        classes=("negative", "positive", "surprise", "others"),
        mapping={"samm": {**_SAMM_3, "other": "others"}},
        expected={"samm": 159},
        description=(
            "SAMM 4 classes (STRCN; FR Table 12): negative = anger, contempt, disgust, fear, "
            "sadness; positive = happiness; surprise; others = other. 159 = 92/26/15/26 as "
            "published, but over 29 subjects, not the 32 claimed (32 counts participants; "
            "REPORT.md D).")),
    Protocol(
        name="casme2_samm_4class",
        databases=("casme2", "samm"),
        classes=("negative", "positive", "surprise", "others"),
        mapping={"casme2": {**_CASME2_NEG, "repression": "others", "others": "others"},
                 "samm": {**_SAMM_3, "other": "others"}},
        expected={"casme2": 255, "samm": 159},
        description=(
            "CASME II + SAMM, 4 classes, composite LOSO / LOVO (STRCN Table VI): casme2_4class "
            "and samm_4class together, 414 samples over 55 subjects; the paper's 415 has the one "
            "extra CASME II clip of casme2_4class.")),
    Protocol(
        name="smic_3class",
        databases=("smic",),
        classes=_THREE,
        mapping={"smic": _SMIC_3},
        expected={"smic": 164},
        description=(
            "SMIC-HS, its 3 native classes, single-database LOSO (FR Table 12, Micro-Attention, "
            "OFF-ApexNet, MTMNet, STRCN): 164 = 70/51/43 over 16 subjects from the folders or the "
            "MEGC2019 list. The SMIC-E sheet gives 162 = 69/51/42 by clip-name code (it lacks "
            "s01_ne_02 and s02_sur_05; REPORT.md E).")),
    Protocol(
        name="cdmer_casme2",
        databases=("casme2",),
        classes=_THREE,
        mapping={"casme2": _CASME2_NEG},
        expected={"casme2": 129},
        description=(
            "CASME II in the cross-database protocol (CDMER, FR Tables 10-11, after Zong et al.): "
            "negative = disgust + sadness + fear, positive = happiness, surprise; repression and "
            "others are left out. Published 130 = 73/32/25; CASME2-coding-20140508 gives 129 = "
            "72/32/25 over 22 subjects (the same missing clip sub24/EP02_07 as the 4-class set; "
            "REPORT.md C).")),
    Protocol(
        name="cdmer_smic_hs",
        databases=("smic",),
        classes=_THREE,
        mapping={"smic": _SMIC_3},
        expected={"smic": 164},
        description=(
            "SMIC-HS in CDMER (FR Tables 10-11): 164 = 70/51/43, 16 subjects (162 from the SMIC-E "
            "sheet, REPORT.md E).")),
    Protocol(
        name="cdmer_smic_vis",
        databases=("smic_vis",),
        classes=_THREE,
        mapping={"smic_vis": _SMIC_3},
        expected={"smic_vis": 71},
        description=(
            "SMIC-VIS in CDMER (FR Table 11): 71 = 23/28/20 over 8 subjects, as published and as "
            "the CDMER label vectors. From the SMIC-E VIS sheet the label is the clip-name code: "
            "its Emotion column reads 24/28/19 because it calls s18_sur_03 negative "
            "(REPORT.md E).")),
    Protocol(
        name="cdmer_smic_nir",
        databases=("smic_nir",),
        classes=_THREE,
        mapping={"smic_nir": _SMIC_3},
        expected={"smic_nir": 71},
        description=(
            "SMIC-NIR in CDMER (FR Table 11): 71 = 23/28/20 over 8 subjects. No NIR clip list "
            "exists among the annotations; the NIR camera recorded the same 71 clips as VIS (the "
            "CDMER label vectors of both are identical, 23/28/20), so without the NIR folders the "
            "index reads the SMIC-E VIS sheet under the smic_nir name. That is an inference.")),
    Protocol(
        name="casme2_objective",
        databases=("casme2",),
        classes=OBJECTIVE_NAMES[:5],
        mapping={"casme2": _objective()},
        label_from="objective_class",
        expected={"casme2": 185},
        description=(
            "CASME II objective classes I-V (MEGC2018), single-database LOSO as in Micro-Attention "
            "(Sec 4.2, Table 6): 185 = 25/15/99/26/20 over 26 subjects, the CASME II half of "
            "megc2018_objective (CASME2-ObjectiveClasses.xlsx).")),
    Protocol(
        name="megc2018_objective",
        databases=("casme2", "samm"),
        classes=OBJECTIVE_NAMES[:5],
        mapping={"casme2": _objective(), "samm": _objective()},
        label_from="objective_class",
        expected={"casme2": 185, "samm": 68},
        description=(
            "CASME II + SAMM objective classes I-V (MEGC2018), CDE as in Micro-Attention "
            "(Sec 4.2-4.3, Table 1: I-V named happiness, surprise, anger, disgust, sadness): "
            "CASME II 185 = 25/15/99/26/20 (26 subjects) from CASME2-ObjectiveClasses.xlsx, SAMM "
            "68 = 24/13/20/8/3; 253 = 49/28/119/34/23 as published (Table 5's per-class counts). "
            "The paper's 20 SAMM subjects are 21 in SAMM v2 (47 in all, not 46). The objective "
            "classes inside CASME2-coding-20190701 differ (174 in I-V) and are used when that "
            "coding is read.")),
]


def _registry(protocols) -> dict:
    registry: dict[str, Protocol] = {}
    for protocol in protocols:
        if protocol.name in registry:
            raise ValueError(f"duplicate protocol name {protocol.name!r}")
        registry[protocol.name] = protocol
    return registry


PROTOCOLS: dict[str, Protocol] = _registry(_PROTOCOLS)


def get_protocol(protocol: Union[str, Protocol]) -> Protocol:
    """The :class:`Protocol` of that name (or ``protocol`` itself)."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise DataPrepError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]


@dataclasses.dataclass
class IndexResult:
    """What :func:`build_index` returns.

    Attributes:
        protocol: the protocol.
        rows: one dict per kept sample (columns :data:`ROW_COLUMNS`; ``label`` is a class name).
        samples: the kept :class:`Sample` records, in the order of ``rows``.
        excluded: one dict per sample left out, with a ``reason``.
        problems: the bad rows the readers reported (also in ``excluded``).
    """

    protocol: Protocol
    rows: list
    samples: list
    excluded: list
    problems: Problems


def _read(database: str, path, problems: Problems) -> list[Sample]:
    if database == "casme2":
        return casme2_reader.read(path, problems, check_apex=False)
    if database == "samm":
        return samm_reader.read(path, problems, check_apex=False)
    variant = {"smic": "hs", "smic_vis": "vis", "smic_nir": "nir"}[database]
    return smic_reader.read(path, problems, variant=variant)


def _row(sample: Sample, label: str, note: str = "") -> dict:
    return {
        "database": sample.database, "subject": sample.subject, "sample": sample.clip,
        "onset": sample.onset, "apex": sample.apex, "offset": sample.offset,
        "emotion": sample.emotion, "label": label, "apex_source": sample.apex_source,
        "objective_class": sample.objective_class, "source": sample.source, "note": note,
    }


def build_index(protocol: Union[str, Protocol], *, casme2=None, samm=None, smic=None,
                problems: Optional[Problems] = None) -> IndexResult:
    """The sample index of ``protocol``.

    Args:
        protocol: a name from :data:`PROTOCOLS`, or a :class:`Protocol`.
        casme2: CASME II root or coding .xlsx/.csv.
        samm: SAMM root or coding .xlsx/.csv.
        smic: SMIC root, or an annotation list (the MEGC2019 composite list for HS, the SMIC-E
            sheet for HS, VIS and, by inference, NIR).
        problems: where bad rows go (default: a lenient :class:`Problems`); with
            ``problems.strict`` the first bad row raises. Emotions the protocol drops and unusable
            apexes in ``cde`` are not errors: they are left out with a reason.

    Returns:
        an :class:`IndexResult` ordered by database (as in the protocol), subject and sample.

    Raises:
        DataPrepError: unknown protocol, or a database the protocol needs was not given.
        AnnotationError: an annotation file cannot be read at all.
    """
    protocol = get_protocol(protocol)
    problems = Problems() if problems is None else problems
    paths = {"casme2": casme2, "samm": samm, "smic": smic, "smic_vis": smic, "smic_nir": smic}
    missing = [db for db in protocol.databases if paths[db] is None]
    if missing:
        options = sorted({"--smic" if db.startswith("smic") else f"--{db}" for db in missing})
        raise DataPrepError(f"protocol {protocol.name!r} needs {', '.join(protocol.databases)}; "
                            f"give {' and '.join(options)}")
    kept: list[tuple[Sample, dict]] = []
    excluded: list[dict] = []
    order = {db: i for i, db in enumerate(protocol.databases)}
    for database in protocol.databases:
        local = Problems(strict=problems.strict)
        samples = _read(database, paths[database], local)
        for error in local:
            problems.add(error)
            excluded.append({"database": database, "subject": error.sample.rsplit("/", 1)[0],
                             "sample": error.sample.rsplit("/", 1)[-1], "source": error.path,
                             "reason": f"bad row: {error.reason}"})
        for sample in samples:
            label = protocol.class_of(sample)
            if label is None:
                what = (f"emotion {sample.emotion!r}" if protocol.label_from == "emotion"
                        else f"objective class {sample.objective_class}")
                excluded.append({**_row(sample, ""), "reason": f"{what} is not in protocol "
                                                               f"{protocol.name}"})
                continue
            note = ""
            problem = (apex_problem(sample.onset, sample.apex, sample.offset)
                       if sample.apex_source == "annotation" else None)
            if problem and protocol.drop_bad_apex:
                excluded.append({**_row(sample, label), "reason": f"{problem} (protocol "
                                 f"{protocol.name} needs the annotated apex)"})
                continue
            if problem:
                note = f"{problem}; apex left to the pipeline's estimate"
                sample = sample.replace(apex=None, apex_source="none")
            kept.append((sample, _row(sample, label, note)))
    kept.sort(key=lambda item: (order[item[0].database], item[0].subject, item[0].clip))
    excluded.sort(key=lambda row: (order.get(row["database"], 99), row["subject"], row["sample"]))
    return IndexResult(protocol=protocol, rows=[row for _, row in kept],
                       samples=[sample for sample, _ in kept], excluded=excluded,
                       problems=problems)


def count_table(rows, classes=None) -> str:
    """Counts per database and class, with totals and subject counts, as a fixed-width table.

    Args:
        rows: index rows (dicts with ``database``, ``subject``, ``label``).
        classes: the class order (default: sorted labels found).
    """
    rows = list(rows)
    classes = list(classes) if classes else sorted({row["label"] for row in rows})
    databases = list(dict.fromkeys(row["database"] for row in rows))
    header = ["database", *classes, "total", "subjects"]
    lines = []
    for database in databases + ["all"]:
        part = [row for row in rows if database == "all" or row["database"] == database]
        counts = [sum(1 for row in part if row["label"] == name) for name in classes]
        lines.append([database, *map(str, counts), str(len(part)),
                      str(len({row["subject"] for row in part}))])
    widths = [max(len(line[i]) for line in [header] + lines) for i in range(len(header))]

    def fmt(line):
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths)))

    return "\n".join([fmt(header)] + [fmt(line) for line in lines])


def excluded_path(out) -> Path:
    """``index.csv`` -> ``index.excluded.csv`` next to it."""
    out = Path(out)
    return out.with_name(f"{out.stem}.excluded.csv")


def _reason_summary(excluded) -> str:
    by_reason: dict[str, int] = {}
    for row in excluded:
        key = row["reason"].split(":")[0].split(" (")[0]
        by_reason[key] = by_reason.get(key, 0) + 1
    return "\n".join(f"  {count} x {reason}" for reason, count in sorted(by_reason.items()))


def main_index(args) -> int:
    """``python -m data_prep index``: write a protocol's index CSV and its excluded list."""
    from data_prep import cache

    if getattr(args, "cache", None) is not None:
        meta = cache.read_cache_meta(args.cache)
        rows = cache.read_index(args.cache)
        cache.atomic_write_csv(args.out, rows, cache.INDEX_COLUMNS)
        print(count_table(rows, meta.get("classes")))
        print(f"wrote {args.out}: {len(rows)} samples from cache {args.cache}")
        return 0
    problems = Problems(strict=bool(getattr(args, "strict", False)))
    result = build_index(args.protocol, casme2=args.casme2, samm=args.samm, smic=args.smic,
                         problems=problems)
    cache.atomic_write_csv(args.out, result.rows, ROW_COLUMNS)
    cache.atomic_write_csv(excluded_path(args.out), result.excluded, EXCLUDED_COLUMNS)
    print(count_table(result.rows, result.protocol.classes))
    print(f"wrote {args.out}: {len(result.rows)} samples, protocol {result.protocol.name}")
    if result.excluded:
        print(f"{len(result.excluded)} left out ({excluded_path(args.out)}):")
        print(_reason_summary(result.excluded))
    if len(result.problems):
        print(result.problems.summary(), file=sys.stderr)
    return 0
