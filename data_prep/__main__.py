"""Data-stage command line: ``python -m data_prep {synth,index,flow,strcn,frames,macro,
import-flow-images,import-apex-images}``.

Bad input ends with one line naming the sample and the file, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.apex import APEX_RULES
from data_prep.errors import DataPrepError


def _add_strict(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict", action="store_true",
        help="stop at the first bad sample instead of skipping it and reporting the drop",
    )


def _size(text: str) -> tuple[int, int]:
    """argparse type for ``HEIGHTxWIDTH`` sizes."""
    from data_prep.strcn import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _json_object(text: str) -> dict:
    """argparse type for a JSON object, e.g. TV-L1 parameters."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser(
        "synth", help="write the synthetic CASME II / SAMM / SMIC miniature in their real layouts")
    synth.add_argument("--out", type=Path, required=True, help="folder to write the databases into")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--subjects", nargs="+", default=None, metavar="DB/ID",
                       help="write only these subjects (e.g. casme2/01 samm/006 smic/1), for quick "
                            "checks; such a partial set is not the CDE composite")

    index = commands.add_parser(
        "index", help="write a protocol's sample index from annotation files (or from a cache)")
    index.add_argument("--protocol", required=True,
                       help="protocol name (an unknown name lists the known ones)")
    index.add_argument("--casme2", type=Path, help="CASME II root or its coding .xlsx/.csv")
    index.add_argument("--samm", type=Path, help="SAMM root or SAMM_Micro_FACS_Codes_v2.xlsx/.csv")
    index.add_argument("--smic", type=Path, help="SMIC root (HS/...) or a SMIC annotation file")
    index.add_argument("--cache", type=Path, help="write the index of this prepared cache instead")
    index.add_argument("--out", type=Path, required=True, help="index CSV to write")
    _add_strict(index)

    flow = commands.add_parser("flow", help="prepare an optical-flow cache from database roots")
    flow.add_argument("--protocol", default="cde", help="protocol whose samples to prepare (cde)")
    flow.add_argument("--casme2", type=Path, help="CASME II root")
    flow.add_argument("--samm", type=Path, help="SAMM root")
    flow.add_argument("--smic", type=Path, help="SMIC root")
    flow.add_argument("--out", type=Path, required=True, help="cache folder to write")
    flow.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    flow.add_argument("--face-size", type=int, default=128,
                      help="side of the square face crop the flow is computed on (default 128)")
    flow.add_argument("--flow-size", type=int, default=28,
                      help="side of the stored u/v/strain maps (default 28, as FR and OFF-ApexNet)")
    flow.add_argument("--sequence-length", type=int, default=0,
                      help="also store onset->frame flow for this many frames (0: off)")
    flow.add_argument("--face-detector", choices=("haar", "none"), default="haar",
                      help="'haar': OpenCV's bundled frontal-face cascade on the onset frame; "
                           "'none': frames are already face crops")
    flow.add_argument("--apex-rule", choices=APEX_RULES, default="interframe-diff",
                      help="how to find the apex where the release gives none "
                           "(default interframe-diff, FR Eq. 1)")
    _add_strict(flow)

    strcn = commands.add_parser(
        "strcn", help="prepare the STRCN cache (magnified appearance clips, Eq. 5 apex flow)")
    strcn.add_argument("--protocol", required=True, help="protocol whose samples to prepare")
    strcn.add_argument("--casme2", type=Path, help="CASME II root")
    strcn.add_argument("--samm", type=Path, help="SAMM root")
    strcn.add_argument("--smic", type=Path, help="SMIC root")
    strcn.add_argument("--out", type=Path, required=True, help="cache folder to write")
    strcn.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    strcn.add_argument("--augment", type=int, default=10,
                       help="training augmentations per sample, 0..50 (default 10: each alpha "
                            "5..14 once, keep fractions cycling; 50: the paper's full grid)")
    strcn.add_argument("--face-detector", choices=("haar", "none"), default="haar",
                       help="'haar': OpenCV's frontal-face cascade on the onset frame; "
                            "'none': frames are already face crops")
    strcn.add_argument("--appearance-size", type=_size, default=(64, 48), metavar="HxW",
                       help="STRCN-A frame size, height x width (default 64x48)")
    strcn.add_argument("--geometry-size", type=_size, default=(300, 245), metavar="HxW",
                       help="STRCN-G flow size, height x width (default 300x245)")
    strcn.add_argument("--length", type=int, default=30,
                       help="frames of the temporally normalised appearance clip (default 30)")
    strcn.add_argument("--tvl1", type=_json_object, default=None, metavar="JSON",
                       help="TV-L1 parameters overriding OpenCV's defaults, recorded in the cache "
                            "(e.g. '{\"warps\": 1, \"nscales\": 3}' for a quick check; names as "
                            "in data_prep.flow.TVL1_PARAMETERS)")
    _add_strict(strcn)

    imported = commands.add_parser(
        "import-flow-images",
        help="import precomputed MEGC2019 u/v/strain PNGs (STSTNet/HTNet) into a cache")
    imported.add_argument("--images", type=Path, required=True, help="folder of the PNG files")
    imported.add_argument("--labels", type=Path, required=True, help="the label CSV")
    imported.add_argument("--out", type=Path, required=True, help="cache folder to write")
    _add_strict(imported)

    # the face-image stages (Micro-Attention, MTMNet): each module declares its own commands
    from data_prep.apex_frames import add_commands as add_frame_commands
    from data_prep.macro import add_commands as add_macro_commands
    add_frame_commands(commands, _add_strict)   # frames, import-apex-images
    add_macro_commands(commands, _add_strict)   # macro
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "synth":
            from data_prep.synthetic import main_synth
            return main_synth(args)
        if args.command == "index":
            from data_prep.index import main_index
            return main_index(args)
        if args.command == "flow":
            from data_prep.pipeline import main_flow
            return main_flow(args)
        if args.command == "strcn":
            from data_prep.strcn import main_strcn
            return main_strcn(args)
        if args.command == "import-flow-images":
            from data_prep.datasets.flow_images import main_import
            return main_import(args)
        if hasattr(args, "main"):  # commands declared by their module (add_commands)
            return args.main(args)
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished entries are kept, rerun to resume", file=sys.stderr)
        return 130
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
