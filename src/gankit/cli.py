"""``gankit`` command line. Every user error is one line and a non-zero exit, no traceback."""

import argparse
import json
import os
import sys
import warnings

from gankit import __version__
from gankit.catalog import DATASET_NAMES, MODEL_NAMES
from gankit.errors import GankitError, Interrupted, TrainingDiverged

TRAIN_EXAMPLES = """examples:
  gankit train wgan-gp --data 8gaussians                      # family defaults
  gankit train wgan --data 25gaussians --steps 2000 seed=3 lr=1e-4
  gankit train gan --data ring --config my.yaml --out runs/ring-gan
  gankit train --resume runs/00000-wgan-gp-8gaussians steps=6000   # continue, even after Ctrl-C
  gankit train wgan-gp --data 8gaussians --dry-run           # print the resolved config
  gankit train classifier --data mnist epochs=2              # evaluation classifier, cached
  gankit train classifier --data digits2colour   # per-domain content + A-vs-B classifiers
"""

SAMPLE_EXAMPLES = """examples:
  gankit sample runs/00000-wgan-gp-8gaussians --n 2000 --seed 1 --out samples.png
  gankit sample runs/00001-cgan-mnist --label 7 --n 64 --out sevens.png
  gankit sample runs/00001-cgan-mnist --label all --n 100 --out grid.png      # a row per class
  gankit sample runs/00001-cgan-mnist --label all --interpolate --out walk.png # latent walks
  gankit sample runs/00001-cgan-mnist --n 10000 --out-dir fakes/   # fakes/<class>/00000.png ...
  gankit sample runs/00000-wgan-gp-8gaussians --n 5000 --out-dir pts/    # pts/samples.csv (x,y)
--out-dir writes one PNG per image (grey as mode L, colour as RGB), 256 at a time; a conditional
run with no --label (or --label all) splits --n across one subfolder per class (its name, else
its index), a remainder one each to the first classes; 2-D point runs write samples.csv.
"""

EVAL_EXAMPLES = """examples:
  gankit eval runs/00000-wgan-gp-8gaussians    # JSON on stdout, also appended to metrics.jsonl
  gankit eval runs/00001-cgan-mnist --n 10000  # classifier FID/KID with floors, cond. accuracy
  gankit eval runs/00001-cgan-mnist --inception 1000   # plus Inception FID (slow on CPU)
"""

TRANSLATE_EXAMPLES = """examples:
  gankit translate runs/00002-cyclegan-digits2colour --input digits/ --out colour/
  gankit translate runs/00002-cyclegan-horse2zebra --input zebra.jpg --direction BtoA --out out/
any size, grey or colour: resized to the model's size, translated, resized back (PNG, same name)
"""

EXPORT_EXAMPLES = """examples:
  gankit export runs/00001-cgan-mnist --out cgan.pt2
  gankit export runs/00002-cyclegan-digits2colour --direction BtoA --out colour2grey.pt2
  gankit export runs/00001-cgan-mnist --out cgan.onnx        # needs pip install 'gankit[onnx]'
  gankit export runs/00001-cgan-mnist --format safetensors --out cgan.safetensors
then, with torch alone: g = torch.export.load("cgan.pt2").module(); g(z, y)
with onnxruntime: onnxruntime.InferenceSession("cgan.onnx").run(None, {"z": z, "y": y})
with gankit: g = gankit.load_weights("cgan.safetensors")   (its card: cgan.card.json)
each file is checked against gankit's own model at batch sizes 1 and 7 before it is written
"""


THEORY_EXAMPLES = """examples:
  gankit theory parallel-lines --out theory          # 21 values of θ, about 20 s
  gankit theory parallel-lines --out docs/img --seed 1
  gankit theory parallel-lines --quick --out /tmp/pl   # 7 values of θ, about 5 s

writes parallel_lines.png (JS and EM against θ: closed form and from samples, the WGAN
paper's Figure 1), parallel_lines_learned.png (a trained WGAN-GP critic and GAN discriminator:
their estimates and the gradient of each generator objective in θ) and parallel_lines.json.
"""


def add_theory_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``gankit theory parallel-lines [--out DIR] [--quick] [--seed N]``.

    Args:
        subparsers: The root parser's ``add_subparsers()`` object.

    Returns:
        The ``theory`` parser.
    """
    fmt = argparse.RawDescriptionHelpFormatter
    theory = subparsers.add_parser(
        "theory",
        help="reproduce the theory behind the models",
        epilog=THEORY_EXAMPLES,
        formatter_class=fmt,
    )
    actions = theory.add_subparsers(dest="theory_action", required=True, metavar="ACTION")
    lines = actions.add_parser(
        "parallel-lines",
        epilog=THEORY_EXAMPLES,
        formatter_class=fmt,
        help="JS vs EM between two parallel segments (WGAN paper, Figure 1), learned too",
    )
    lines.add_argument("--out", default="theory", help="folder for the PNGs and JSON (theory/)")
    lines.add_argument(
        "--quick", action="store_true", help="7 values of θ, 500 samples, 400 steps (for tests)"
    )
    lines.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    return theory


FMT = {"formatter_class": argparse.RawDescriptionHelpFormatter}


def _parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="gankit",
        description="Train, sample and evaluate classic GANs on an ordinary machine.",
        epilog="run `gankit COMMAND --help` for each command's options and examples",
    )
    root.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_run_commands(sub)
    _add_report(sub)
    sub.add_parser(
        "cache", help="where gankit caches datasets, classifiers, statistics and weights"
    )
    add_theory_parser(sub)
    _add_serve(sub)
    _add_data(sub)
    root.commands = sub.choices  # type: ignore[attr-defined]  # `train MODEL --help` extends one
    return root


def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model", epilog=TRAIN_EXAMPLES, **FMT)
    train.add_argument(
        "model",
        nargs="?",
        help=f"one of: {', '.join(MODEL_NAMES)}, or classifier (for evaluation); "
        "`gankit train MODEL --help` lists its options",
    )
    train.add_argument("overrides", nargs="*", help="config overrides key=value (seed=3, lr=1e-4)")
    train.add_argument("--data", help=f"dataset: {', '.join(DATASET_NAMES)}, or a folder")
    train.add_argument("--steps", help="generator steps (default: the family's preset)")
    train.add_argument("--out", help="run directory (default: runs/NNNNN-MODEL-DATA)")
    train.add_argument("--config", help="YAML with keys model, data, train, model_config")
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint"
    )
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="check model, data and config as a real run would, print the config, and exit",
    )


def _add_run_commands(sub: argparse._SubParsersAction) -> None:
    """sample, eval, translate and export: commands on a trained run."""
    fmt = FMT
    sample = sub.add_parser("sample", help="draw samples from a run", epilog=SAMPLE_EXAMPLES, **fmt)
    sample.add_argument("run_dir", help="a run directory made by gankit train")
    sample.add_argument(
        "--n", type=int, default=64, help="number of samples in all (default 64; see below)"
    )
    sample.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same file")
    sample.add_argument("--out", help="PNG file to write (default samples.png)")
    sample.add_argument(
        "--out-dir", help="a new or empty folder: one PNG per sample instead of one picture"
    )
    sample.add_argument("--label", help="conditional models: a class index, or 'all' (row each)")
    sample.add_argument("--interpolate", action="store_true", help="latent walk along each row")
    sample.add_argument("--checkpoint", help="a specific checkpoint file (default: the latest)")
    sample.add_argument("--device", default="auto", help="auto (default), cpu, cuda")

    ev = sub.add_parser(
        "eval", help="evaluate a run's latest checkpoint", epilog=EVAL_EXAMPLES, **fmt
    )
    ev.add_argument("run_dir", help="a run directory made by gankit train")
    ev.add_argument("--n", type=int, help="samples to evaluate (default: the run's eval_samples)")
    ev.add_argument("--checkpoint", help="a specific checkpoint file (default: the latest)")
    ev.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    ev.add_argument(
        "--inception",
        type=int,
        default=0,
        metavar="N",
        help="add Inception FID of N samples (images; ~0.2 s per image on 2 cores)",
    )
    tr = sub.add_parser(
        "translate",
        help="translate image files with a CycleGAN/DiscoGAN run",
        epilog=TRANSLATE_EXAMPLES,
        **fmt,
    )
    tr.add_argument("run_dir", help="a cyclegan or discogan run directory")
    tr.add_argument("--input", required=True, help="an image file or a folder of PNG/JPEG images")
    tr.add_argument("--direction", default="AtoB", help="AtoB (default) or BtoA")
    tr.add_argument("--out", required=True, help="folder for the translations (NAME.png each)")
    tr.add_argument("--checkpoint", help="a specific checkpoint file (default: the latest)")
    tr.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    ex = sub.add_parser(
        "export",
        help="write one generator as a .pt2 program, an ONNX model or safetensors weights",
        epilog=EXPORT_EXAMPLES,
        **fmt,
    )
    ex.add_argument("run_dir", help="a run directory made by gankit train")
    ex.add_argument("--out", required=True, help="the .pt2, .onnx or .safetensors file to write")
    ex.add_argument(
        "--format",
        choices=["pt2", "onnx", "safetensors"],
        help="default: from the --out suffix; safetensors also writes NAME.card.json",
    )
    ex.add_argument("--direction", help="translation runs: AtoB (default) or BtoA")
    ex.add_argument("--checkpoint", help="a specific checkpoint file (default: the latest)")


SERVE_EXAMPLES = """examples:
  gankit serve runs/00001-cgan-mnist              # then open http://127.0.0.1:7860
  gankit serve runs/00002-cyclegan-digits2colour --port 8000
  gankit serve runs/00000-wgan-gp-8gaussians      # a slider through the kept checkpoints
  gankit serve --theory                           # the parallel-lines example, live
needs the serve extra: pip install 'gankit[serve]' (Gradio); --host 0.0.0.0 serves other machines
"""


def _add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="an interactive web demo of a run (or --theory)", epilog=SERVE_EXAMPLES, **FMT
    )
    serve.add_argument("run_dir", nargs="?", help="a run directory made by gankit train")
    serve.add_argument(
        "--theory", action="store_true", help="the parallel-lines example instead of a run"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    serve.add_argument("--device", default="auto", help="auto (default), cpu, cuda")


def _serve(args: argparse.Namespace) -> None:
    from gankit.serve import run_serve

    run_serve(args.run_dir, theory=args.theory, host=args.host, port=args.port, device=args.device)


def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data",
        help="fetch datasets into the local cache; export built-in pairs as folders",
        **FMT,
        epilog="examples:\n  gankit data fetch mnist\n  gankit data fetch fashion-mnist\n"
        "  gankit data fetch inception   # the FID Inception-v3 network, for eval --inception\n"
        "  gankit data export sneakers2boots data/sneakers2boots   # folders for --data DIR\n",
    )
    data_sub = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    fetch = data_sub.add_parser("fetch", help="copy or download a dataset into the cache")
    fetch.add_argument("name", help="mnist, fashion-mnist or inception (the FID network)")
    fetch.add_argument("--force", action="store_true", help="fetch again even if cached")
    export = data_sub.add_parser(
        "export", help="write a built-in unpaired pair as trainA/trainB/testA/testB PNG folders"
    )
    export.add_argument("name", help="digits2colour, sneakers2boots or edges2shoes-mini")
    export.add_argument("out", help="a new (or empty) folder")


def _theory(args: argparse.Namespace) -> None:
    from gankit.theory import run_theory

    run_theory(args)


def _data(args: argparse.Namespace) -> None:
    if args.action == "export":
        from gankit.data.pairs import export_pair

        counts = export_pair(args.name, args.out)
        print(
            f"{args.name} written to {args.out}: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
        return
    if args.name == "inception":
        from gankit.metrics.fid import fetch_inception

        path = fetch_inception(force=args.force)
        print(f"the FID Inception network is ready in {path}")
        return
    from gankit.data.fetch import fetch

    path = fetch(args.name, force=args.force)
    print(f"{args.name} is ready in {path}")


def _train_overrides(args: argparse.Namespace) -> list[str]:
    """key=value items, with --steps/--device folded in (a lone MODEL=... is an override too)."""
    overrides = list(args.overrides)
    if args.model and "=" in args.model:
        overrides.insert(0, args.model)
        args.model = None
    if args.steps is not None:
        overrides.append(f"steps={args.steps}")
    if args.device is not None:
        overrides.append(f"device={args.device}")
    return overrides


def _train(args: argparse.Namespace) -> None:
    from gankit import api, distributed, runs
    from gankit.runs import Run

    overrides = _train_overrides(args)
    if args.model == "classifier":
        _train_classifier(args.data, overrides)
        return
    main = distributed.init(args.device or "auto").main  # under torchrun: rank 0 speaks
    run_dir = runs.require_run(args.resume) if args.resume else None
    ckpt = runs.latest_checkpoint_or_none(run_dir) if run_dir else None
    ckpt = distributed.broadcast_object(ckpt)  # every process resumes from rank 0's choice
    if run_dir and not ckpt:  # stopped before its first checkpoint: only its config is there
        note = f"{run_dir} has no checkpoint yet: starting it again from its config"
        if main:
            print(note, file=sys.stderr)
        args.config, args.out = str(run_dir / "config.yaml"), str(run_dir)
    if ckpt:
        run = Run.from_checkpoint(ckpt, device=args.device or "auto", overrides=overrides)
        if args.model and args.model != run.cfg.model:
            raise GankitError(
                f"{run_dir} is a {run.cfg.model} run, not {args.model}: "
                f"resume it with gankit train --resume {run_dir}"
            )
        if main:
            print(
                f"resuming {run_dir} from {ckpt.name} (step {run.step}, {run.precision})",
                file=sys.stderr,
            )
    else:
        cfg = api.configure(args.model, args.data, config=args.config, overrides=overrides)
        run, run_dir = api.prepare(cfg, args.out, create=not args.dry_run)
        if args.dry_run:
            import yaml

            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return
        world = distributed.world()
        where = f"{run.device}, {run.precision}"
        where += f", {world.size} processes" if world.size > 1 else ""
        if main:
            print(f"training {cfg.model} on {cfg.data} into {run_dir} ({where})", file=sys.stderr)
    metrics = api.fit(run, run_dir)
    if main:
        print(json.dumps({"run_dir": str(run_dir), "step": run.step, **metrics}))
    distributed.finish()  # under torchrun: every process leaves the group together


def _train_classifier(data: str | None, overrides: list[str]) -> None:
    """`gankit train classifier --data NAME`: the evaluation classifier(s) of a dataset."""
    from gankit.config import apply, parse_overrides
    from gankit.data import data_kind
    from gankit.metrics.classifier import ClassifierConfig, train_for_dataset
    from gankit.metrics.translation import train_unpaired_classifiers

    if not data:
        raise GankitError("name the dataset: gankit train classifier --data mnist")
    cfg = apply(ClassifierConfig(), dict(parse_overrides(overrides)), "classifier")
    if data_kind(data).startswith("unpaired"):  # content classes of A and B, and A vs B
        print(json.dumps({"classifiers": train_unpaired_classifiers(data, cfg)}))
        return
    path, acc = train_for_dataset(data, cfg)
    print(json.dumps({"classifier": str(path), "test_accuracy": acc}))


def _load(args: argparse.Namespace):
    from gankit import api
    from gankit.runs import Run, require_run

    if args.checkpoint:
        require_run(args.run_dir)
        return Run.from_checkpoint(args.checkpoint, device=args.device)
    return api.load(args.run_dir, device=args.device)


def _sample(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise GankitError(f"--n {args.n}: the number of samples must be at least 1")
    if args.out_dir is not None:
        return _sample_files(args)
    run = _load(args)
    out = run.save_samples(
        args.out or "samples.png",
        args.n,
        seed=args.seed,
        label=args.label,
        interpolate=args.interpolate,
    )
    print(f"wrote {args.n} samples from {run.checkpoint} to {out}", file=sys.stderr)


def _sample_files(args: argparse.Namespace) -> None:
    if args.out is not None or args.interpolate:
        raise GankitError("--out-dir writes files one per sample: drop --out and --interpolate")
    run = _load(args)
    counts = run.save_sample_files(
        args.out_dir, args.n, seed=args.seed, label=args.label, progress=True
    )
    folders = [name for name in counts if name and name != "samples.csv"]
    where = f" in {len(folders)} class folders" if folders else ""
    print(f"wrote {args.n} samples from {run.checkpoint} to {args.out_dir}{where}", file=sys.stderr)


def _translate(args: argparse.Namespace) -> None:
    from gankit.translate import run_translate

    summary = run_translate(
        args.run_dir, args.input, args.direction, args.out, args.checkpoint, args.device
    )
    print(summary, file=sys.stderr)


def _export(args: argparse.Namespace) -> None:
    from gankit.export import run_export

    summary = run_export(args.run_dir, args.out, args.direction, args.checkpoint, args.format)
    print(summary, file=sys.stderr)


REPORT_EXAMPLES = """examples:
  gankit report runs/00001-cgan-mnist --out cgan.html          # one run
  gankit report runs/toy-gan runs/toy-wgan runs/toy-wgan-gp --out toy.html   # three compared
one HTML file, pictures embedded: it opens offline and can be mailed. It shows the config, the
loss curves, every score over training beside its real-vs-real floor, the sample pictures over
training (a slider), translations per direction and how each score is measured; with several
runs first a table of final and best scores, steps, wall time and the config keys that differ.
"""


def _add_report(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser(
        "report",
        help="one self-contained HTML page about a run, or comparing several",
        epilog=REPORT_EXAMPLES,
        **FMT,
    )
    rep.add_argument("run_dirs", nargs="+", metavar="RUN", help="run directories (one or more)")
    rep.add_argument("--out", default="report.html", help="the HTML file (default report.html)")


def _report(args: argparse.Namespace) -> None:
    from gankit.report import write_report

    out = write_report(args.run_dirs, args.out)
    runs = f"{len(args.run_dirs)} runs" if len(args.run_dirs) > 1 else args.run_dirs[0]
    print(f"wrote the report on {runs} to {out}", file=sys.stderr)


def _eval(args: argparse.Namespace) -> None:
    run = _load(args)
    metrics = run.evaluate(args.n, inception=args.inception)
    with open(run.dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"source": "gankit eval", **metrics}) + "\n")
    print(json.dumps(metrics, indent=2))


def _cache(args: argparse.Namespace) -> None:
    from gankit.cache import describe

    print("\n".join(describe()))


def _options_help(argv: list[str]) -> str | None:
    """`gankit train MODEL [--data DATA] --help`: every key=value option of the training loop and
    of the family, with type, default (after the family's and the data kind's defaults when
    --data is given) and help; None when no model is named."""
    model = next((a for a in argv[1:] if a in MODEL_NAMES), None)
    if model is None:
        return None
    from gankit import runs
    from gankit.config import TrainConfig, apply, option_rows

    data = argv[argv.index("--data") + 1] if "--data" in argv[:-1] else None
    cls = runs.model_class(model)
    if data:
        cfg = runs.resolve(model, data)
        train, family, where = cfg.train, cfg.model_config, f"with --data {data}"
    else:
        train = apply(TrainConfig(), cls.train_defaults, "train")
        family, where = cls.Config(), "before data-kind defaults"
    lines = [f"\noptions as key=value (defaults {where}):"]
    for title, cfg_obj in (("training loop", train), (f"{model}", family)):
        lines.append(f"\n  {title}:")
        for name, type_, default, help_ in option_rows(cfg_obj):
            lines.append(f"    {name}={default}  ({type_})  {help_}".rstrip())
    for kind, values in cls.kind_defaults.items():
        if not data:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            lines.append(f"\n  on {kind} data the family sets: {shown}")
    return "\n".join(lines)


def _one_line_warning(message: Warning | str, *args: object, **kwargs: object) -> str:
    """Notes such as "no CUDA here: using the CPU" read as gankit's lines, not as a source
    location and a code excerpt."""
    return f"gankit: {message}\n"


def _error(exc: Exception, every_process: bool = True) -> None:
    """One line on stderr. Under torchrun rank 0 says it; other ranks only say errors that may
    be theirs alone (a missing GPU), marked with their rank, as a peer then just stops."""
    rank = os.environ.get("RANK", "0")
    if rank == "0":
        print(f"gankit: {exc}", file=sys.stderr)
    elif every_process:
        print(f"gankit [rank {rank}]: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    shown = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    try:
        code = _main(argv)
    finally:
        warnings.formatwarning = shown
    joined = sys.modules.get("gankit.distributed")  # imported only by commands that train
    if joined is not None and joined.world().size > 1:
        joined.exit_process(code)  # a torchrun worker: finished, stopped or failed alike
    return code


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # answered before _parser, which imports torch via the models
        print(f"gankit {__version__}")
        return 0
    parser = _parser()
    if argv[:1] == ["train"] and {"-h", "--help"} & set(argv):
        try:
            options = _options_help(argv)
        except GankitError as exc:
            print(f"gankit: {exc}", file=sys.stderr)
            return 2
        if options is not None:
            parser.commands["train"].print_help()
            print(options)
            return 0
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if "=" not in a or a.startswith("-")]
    if unknown or (extra and args.command != "train"):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if args.command == "train":
        args.overrides = list(args.overrides) + extra
    try:
        {
            "train": _train,
            "sample": _sample,
            "eval": _eval,
            "data": _data,
            "theory": _theory,
            "translate": _translate,
            "export": _export,
            "report": _report,
            "serve": _serve,
            "cache": _cache,
        }[args.command](args)
    except Interrupted as exc:
        _error(exc, every_process=False)
        return 130
    except TrainingDiverged as exc:
        _error(exc, every_process=False)
        return 1
    except GankitError as exc:
        _error(exc)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
