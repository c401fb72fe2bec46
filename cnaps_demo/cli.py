"""Command line: ``python -m cnaps_demo {upscale,engines,download,evaluate,inside,bench}``.

A thin adapter over ``api.plan`` and the engine registry: the engine flags are generated from
the engines' parameter specs, everything that does not depend on a file is checked once by
``api.plan``, and each file goes through ``Plan.load(...).run()``. Each bad file gets a
one-line reason and the others still run; the exit code is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .api import output_name
from .devices import DEVICE_CHOICES
from .engines import DEFAULT_ENGINE_ID, INSIDE_ENGINE_ID, Engine, ParamSpec, all_engines, get_engine
from .errors import CnapsError, InvalidParameterError, UnknownEngineError, WeightsNotFoundError
from .fidelity import summary_line
from .files import path_kind, require_empty_folder

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
_FLAG_TYPES = {"int": int, "float": float}
_METAVARS = {"int": "N", "float": "X", "str": "TEXT", "bool": "yes|no"}


def param_flags() -> dict[str, list[tuple[str, ParamSpec]]]:
    """Every engine parameter once, by name: the (engine id, spec) pairs that take it."""
    flags: dict[str, list[tuple[str, ParamSpec]]] = {}
    for engine in all_engines():
        for spec in engine.params:
            flags.setdefault(spec.name, []).append((engine.id, spec))
    return flags


def _engines_that(wanted: Any) -> str:
    """The ids of the engines ``wanted(engine)`` is true for, for a help text (never spelled here)."""
    return ", ".join(engine.id for engine in all_engines() if wanted(engine))


def _takes(name: str) -> Any:
    return lambda engine: any(spec.name == name for spec in engine.params)


def _flag_help(specs: list[tuple[str, ParamSpec]]) -> str:
    """Each engine's own help and range, engines with the same text named together."""
    texts: dict[str, list[str]] = {}
    for engine_id, spec in specs:
        text = f"{spec.help} {spec.range_text() if spec.kind != 'choice' else ''}".strip()
        texts.setdefault(text, []).append(engine_id)
    return " ".join(f"[{', '.join(ids)}] {text}" for text, ids in texts.items()).replace("%", "%%")


def _add_param_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine parameters (each applies to the engines named in its help)")
    for name, specs in param_flags().items():
        spec = specs[0][1]
        choices = dict.fromkeys(str(c) for _, each in specs for c in each.choices)  # every engine's, in order
        metavar = "{" + ",".join(choices) + "}" if spec.kind == "choice" else _METAVARS[spec.kind]
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"param_{name}",
            type=_FLAG_TYPES.get(spec.kind, str),
            default=None,
            metavar=metavar,
            help=_flag_help(specs),
        )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnaps_demo",
        description="Upscale illustrations 2x with classical, anime CNN and Stable Diffusion engines.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_upscale(commands)
    commands.add_parser("engines", help="list engines, whether each runs here, and why not")
    _add_download(commands)
    _add_evaluate(commands)
    _add_inside(commands)
    # Only listed here for --help: main() hands `bench ...` to cnaps_demo.bench before parsing,
    # because argparse.REMAINDER does not capture options such as --large.
    commands.add_parser("bench", help="time the engines and print the figures (bench --help for options)")
    return parser


def _add_upscale(commands: Any) -> None:
    up = commands.add_parser("upscale", help="upscale image files or folders")
    up.add_argument("inputs", nargs="+", metavar="IN", help="PNG/JPEG/WebP files or folders of them")
    up.add_argument(
        "-o", "--output", required=True, metavar="OUT",
        help="output folder; or a .png file name when there is exactly one input file",
    )
    up.add_argument("--engine", default=DEFAULT_ENGINE_ID, help="engine id (see: python -m cnaps_demo engines)")
    up.add_argument("--scale", type=int, default=None, help="upscale factor (default: the engine's, usually 2)")
    up.add_argument("--tile", type=int, default=0, help="tile size in pixels (0: the engine's default)")
    up.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="auto: CNAPS_DEVICE, else CUDA, MPS, CPU")
    up.add_argument("--overwrite", action="store_true", help="replace existing output files")
    up.add_argument(
        "--colour-fix", action=argparse.BooleanOptionalAction, default=None,
        help="take the output's colours from the input, keep the model's detail (default: on for the CNN and "
        "diffusion engines, where it measurably helps: README, 'Colour fix'); --no-colour-fix: the raw output",
    )
    up.add_argument(
        "--frames", default=None, metavar="DIR",
        help=f"{_engines_that(lambda engine: engine.makes_frames)}: write the denoising filmstrip "
        "(one PNG per UNet step and an animated WebP) to DIR",
    )
    up.add_argument(
        "--plots", default=None, metavar="DIR",
        help="write the edge profile (a ramp against a step) and the spectrum plots of each result against "
        "bicubic to DIR (<output name>-edge.svg/.png, -spectrum.svg/.png)",
    )
    _add_param_flags(up)


def _add_download(commands: Any) -> None:
    down = commands.add_parser("download", help="fetch model weights into the Hugging Face cache")
    down.add_argument("engine", help=f"engine id: {_engines_that(lambda engine: engine.fetches_weights)}")
    down.add_argument("--model", default=None, help="Hub id (default: the engine's model)")
    down.add_argument(
        "--controlnet", default=None,
        help=f"{_engines_that(_takes('controlnet'))}: the ControlNet to fetch too "
        "(default: the engine's tile ControlNet; none: skip it)",
    )


def _add_evaluate(commands: Any) -> None:
    ev = commands.add_parser("evaluate", help="score engines on pictures with a known original; table and plot")
    ev.add_argument("--engines", nargs="+", default=None, metavar="ID", help="engine ids (default: every engine that runs here)")
    ev.add_argument(
        "--images", default=None, metavar="DIR",
        help="folder of originals (degraded here), or with truth/ and input/ folders (default: the bundled set)",
    )
    ev.add_argument("-o", "--output", default="evaluation", metavar="OUT", help="folder for evaluation.md/.csv/.png")
    ev.add_argument(
        "--overwrite", action="store_true", help="write into OUT even when it is not empty (default: refuse)"
    )
    ev.add_argument(
        "--colour-fix", default="default", choices=("default", "on", "off", "both"),
        help="score the AI engines with the colour fix as by default, on, off, or both (two rows each)",
    )
    ev.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="auto: CNAPS_DEVICE, else CUDA, MPS, CPU")


def _add_inside(commands: Any) -> None:
    look = commands.add_parser(
        "inside", help="look inside a CNN engine on a picture: layer strips, base + residual, where a pixel came from"
    )
    look.add_argument("image", metavar="IMAGE", help="a PNG/JPEG/WebP picture")
    look.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the PNG files")
    look.add_argument("--engine", default=INSIDE_ENGINE_ID, help=_engines_that(lambda engine: engine.looks_inside))
    look.add_argument("--scale", type=int, default=None, help="upscale factor (default: the engine's, 2)")
    look.add_argument(
        "--point", default=None, metavar="X,Y", help="result pixel to trace back (default: the region's centre)"
    )
    look.add_argument(
        "--region", default=None, metavar="L,T,W,H",
        help="input pixels to run the layers on, at most 128x128 (default: around the most detailed spot)",
    )
    _add_param_flags(look)


def _collect_inputs(inputs: Sequence[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand folders into their image files (sorted, recursive); report paths that don't exist.

    Each file comes with its path relative to the folder it was found in (its bare name for a
    file given by itself), so outputs keep the input folder's sub-folders.
    """
    files: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for raw in inputs:
        path = Path(raw)
        kind = path_kind(path)
        if kind == "invalid":
            problems.append(f"{raw[:80]}...: not a usable file name (too long, or it holds a NUL character)")
        elif kind == "folder":
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{path}: folder holds no .png, .jpg, .jpeg or .webp files")
            files.extend((p, p.relative_to(path)) for p in found)
        elif kind == "file":
            files.append((path, Path(path.name)))
        else:
            problems.append(f"{path}: no such file or folder")
    return files, problems


def _output_path(relative: Path, output: Path, single_file: bool, engine: str, scale: int) -> Path:
    if single_file and output.suffix.lower() == ".png":
        return output
    return output / relative.parent / output_name(relative.stem, engine, scale)


def _tqdm_progress(bar: Any):
    def progress(done: int, total: int, description: str) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.set_description_str(description[:40])
        bar.n = done
        bar.refresh()

    return progress


def _check_output(output: Path) -> None:
    """Refuse an ``-o`` that can be neither a .png file name nor a folder."""
    if path_kind(output) == "invalid":
        raise InvalidParameterError(
            f"Output {str(output)[:80]}... is not a usable file name (too long, or it holds a NUL character).",
            hint="Give a shorter .png file name or folder with -o.",
        )
    if output.suffix and output.suffix.lower() != ".png" and path_kind(output) != "folder":
        raise InvalidParameterError(
            f"Output {output} is not a .png file name or a folder.",
            hint="Outputs are lossless PNG: use a name ending in .png, or a folder.",
        )


def _cmd_upscale(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .api import plan

    params = {name: getattr(args, f"param_{name}") for name in param_flags()}
    params = {name: value for name, value in params.items() if value is not None}
    # Everything that doesn't depend on a file is checked once, up front, before touching any image.
    frames = bool(args.frames)
    checked = plan(
        args.engine, scale=args.scale, device=args.device, tile=args.tile, frames=frames,
        colour_fix=args.colour_fix, **params
    ).require_runnable()
    engine, scale = checked.engine, checked.scale

    files, problems = _collect_inputs(args.inputs)
    output = Path(args.output)
    single_file = len(files) == 1 and len(args.inputs) == 1 and path_kind(args.inputs[0]) != "folder"
    if output.suffix.lower() == ".png" and len(files) > 1:
        problems.append(f"{output}: a .png output name needs exactly one input file; give a folder instead")
        files = []
    _check_output(output)
    failed = len(problems)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)

    # disable=None: bars only on a terminal, so piped logs keep one clean line per image.
    for source, relative in tqdm(files, desc="images", unit="img", disable=True if len(files) < 2 else None):
        target = _output_path(relative, output, single_file, engine.id, scale)
        if target.resolve() == source.resolve():
            tqdm.write(f"error: {source}: output would overwrite the input; choose another -o", file=sys.stderr)
            failed += 1
            continue
        if target.exists() and not args.overwrite:
            tqdm.write(f"error: {source}: {target} exists; pass --overwrite to replace it", file=sys.stderr)
            failed += 1
            continue
        with tqdm(total=1, desc=source.name, unit="step", leave=False, disable=None) as bar:
            try:
                result = checked.load(source, progress=_tqdm_progress(bar)).run()
            except CnapsError as error:
                tqdm.write(f"error: {source}: {error}", file=sys.stderr)
                failed += 1
                continue
        result.save(target)
        for line in _write_extras(args, result, target):
            tqdm.write(f"{source}: {line}", file=sys.stdout)
        for notice in result.notices:
            tqdm.write(f"note: {source}: {notice}", file=sys.stderr)
        tqdm.write(f"{source} -> {target} ({result.image.width}x{result.image.height}, {result.seconds:.2f} s)", file=sys.stdout)
        tqdm.write(f"  fidelity: {summary_line(result.fidelity)}", file=sys.stdout)
    if failed:
        print(f"{failed} input(s) failed; see the lines above.", file=sys.stderr)
    return 1 if failed else 0


def _write_extras(args: argparse.Namespace, result, target: Path) -> list[str]:
    """What ``--frames`` and ``--plots`` ask for beside one output; a line for each."""
    lines = []
    if args.frames and result.frames:
        from .frames import write_frames

        strip = write_frames(result.frames, Path(args.frames) / target.stem)
        lines.append(f"{len(result.frames)} denoising frames -> {strip.parent}")
    if args.plots:
        from .present.result_plots import write_result_plots

        written = write_result_plots(result, args.plots, target.stem, png=True)
        lines.append("edge profile and spectrum plots -> " + ", ".join(str(path) for path in written.values()))
    return lines


def _cmd_inside(args: argparse.Namespace) -> int:
    """Write what ``inside`` and ``attribution`` show as PNGs, one line per file; typed errors go to ``main``."""
    from .probe import write_inside

    params = {name: getattr(args, f"param_{name}") for name in param_flags()}
    params = {name: value for name, value in params.items() if value is not None}
    source = Path(args.image)
    seen, found, written = write_inside(
        source, args.output, source.stem, args.engine, point=args.point, region=args.region, scale=args.scale, **params
    )
    left, top, width, height = seen.region
    print(f"{source}: {seen.engine_id} x{seen.scale} on the {width}x{height} region at ({left}, {top}), "
          f"{seen.seconds:.2f} s; point {found.point} traced back in {found.seconds:.2f} s")
    for path, what in written:
        print(f"{path}: {what}")
    return 0


def _cmd_engines(args: argparse.Namespace) -> int:
    from .api import availability

    engines = all_engines()
    width = max(len(engine.id) for engine in engines)
    for engine in engines:
        ok, reason = availability(engine)
        scales = ",".join(f"x{s}" for s in engine.scales)
        print(f"{engine.id:<{width}}  {'available' if ok else 'unavailable':<11}  {scales:<8}  {engine.display_name}")
        if not ok:
            print(f"{'':<{width}}  why: {reason}")
    return 0


def _download_params(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    """The weight-naming parameters the command line gave (the engine's defaults fill the rest)."""
    given = {"model": args.model, "controlnet": args.controlnet}
    return {name: value for name, value in given.items() if value is not None and _takes(name)(engine)}


def _cmd_download(args: argparse.Namespace) -> int:
    """Fetch the weights; typed errors propagate to ``main`` (exit 1, or 2 for a bad engine)."""
    from .settings import get_settings

    engine = get_engine(args.engine)
    if not engine.fetches_weights:
        raise InvalidParameterError(
            f"There are no Hub weights to fetch for engine {engine.id!r}: they come with the package.",
            hint=f"`download` fetches the weights of: {_engines_that(lambda each: each.fetches_weights)}.",
        )
    settings = get_settings()
    if not settings.allow_downloads:
        raise WeightsNotFoundError(
            "Downloads are switched off on this machine (CNAPS_ALLOW_DOWNLOADS=0).",
            hint="Unset CNAPS_ALLOW_DOWNLOADS (or set it to 1) to fetch weights, "
            "or copy them into the Hugging Face cache.",
        )
    params = engine.check_params(_download_params(engine, args), settings)
    for what, folder in engine.download_weights(params, settings=settings):
        print(f"{what} for {engine.id} is ready in {folder}", file=sys.stdout)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .evaluate import evaluate

    engines = [part for item in args.engines for part in item.split(",") if part] if args.engines else None
    require_empty_folder(args.output, overwrite=args.overwrite)  # before minutes of work, not after
    with tqdm(total=1, desc="evaluate", unit="run", disable=None) as bar:
        evaluation = evaluate(
            engines, args.images, colour_fix=args.colour_fix, device=args.device, progress=_tqdm_progress(bar)
        )
    for engine_id, reason in evaluation.skipped:
        print(f"note: skipped {engine_id}: {reason}", file=sys.stderr)
    print(evaluation.markdown(), file=sys.stdout)
    for kind, path in evaluation.write(args.output).items():
        print(f"{kind}: {path}", file=sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from .bench import main as bench_main

        return int(bench_main(argv[1:]) or 0)
    args = _build_parser().parse_args(argv)
    handler = {
        "upscale": _cmd_upscale,
        "engines": _cmd_engines,
        "download": _cmd_download,
        "evaluate": _cmd_evaluate,
        "inside": _cmd_inside,
    }[args.command]
    try:
        return handler(args)
    except (InvalidParameterError, UnknownEngineError) as error:  # a bad command: exit code 2
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CnapsError as error:  # the command was fine; the world was not (no network, no weights)
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


