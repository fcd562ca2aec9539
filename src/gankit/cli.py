"""``gankit`` command line. Every user error is one line and a non-zero exit, no traceback."""

import argparse
import json
import sys
from pathlib import Path

from gankit.errors import GankitError

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
then, with torch alone: g = torch.export.load("cgan.pt2").module(); g(z, y)
"""


def _parser() -> argparse.ArgumentParser:
    from gankit.data import DATASETS
    from gankit.models import MODELS

    root = argparse.ArgumentParser(
        prog="gankit",
        description="Train, sample and evaluate classic GANs on an ordinary machine.",
        epilog="run `gankit COMMAND --help` for each command's options and examples",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = {"formatter_class": argparse.RawDescriptionHelpFormatter}

    train = sub.add_parser("train", help="train a model", epilog=TRAIN_EXAMPLES, **fmt)
    train.add_argument(
        "model", nargs="?", help=f"one of: {', '.join(MODELS)}, or classifier (for evaluation)"
    )
    train.add_argument("overrides", nargs="*", help="config overrides key=value (seed=3, lr=1e-4)")
    train.add_argument("--data", help=f"dataset: {', '.join(DATASETS)}, or a folder")
    train.add_argument("--steps", help="generator steps (default: the family's preset)")
    train.add_argument("--out", help="run directory (default: runs/NNNNN-MODEL-DATA)")
    train.add_argument("--config", help="YAML with keys model, data, train, model_config")
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint"
    )
    train.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")

    sample = sub.add_parser("sample", help="draw samples from a run", epilog=SAMPLE_EXAMPLES, **fmt)
    sample.add_argument("run_dir", help="a run directory made by gankit train")
    sample.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same file")
    sample.add_argument("--out", default="samples.png", help="PNG file to write")
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
        help="write one generator as a torch.export program (.pt2) that needs torch alone",
        epilog=EXPORT_EXAMPLES,
        **fmt,
    )
    ex.add_argument("run_dir", help="a run directory made by gankit train")
    ex.add_argument("--out", required=True, help="the .pt2 file to write")
    ex.add_argument("--direction", help="translation runs: AtoB (default) or BtoA")
    ex.add_argument("--checkpoint", help="a specific checkpoint file (default: the latest)")
    from gankit.theory import add_theory_parser

    add_theory_parser(sub)
    data = sub.add_parser(
        "data",
        help="fetch datasets into the local cache; export built-in pairs as folders",
        **fmt,
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
    return root


def _theory(args: argparse.Namespace) -> None:
    from gankit.theory import run_theory

    run_theory(args)


def _data(args: argparse.Namespace) -> None:
    if args.action == "export":
        from gankit.data.unpaired import export_pair

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
    from gankit.data import images

    path = images.fetch(args.name, force=args.force)
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


def _new_config(args: argparse.Namespace, overrides: list[str]):
    from gankit import runs

    if args.config:
        cfg = runs.from_yaml_file(args.config, args.model, args.data)
        return runs.resolve(cfg.model, cfg.data, cfg.to_dict(), overrides)
    if not args.model:
        raise GankitError("name a model: gankit train MODEL --data DATA (see --help)")
    if not args.data:
        raise GankitError("name a dataset with --data (e.g. --data 8gaussians)")
    return runs.resolve(args.model, args.data, None, overrides)


def _train(args: argparse.Namespace) -> None:
    from gankit import runs
    from gankit.device import resolve_device
    from gankit.trainer import Run, Trainer

    overrides = _train_overrides(args)
    if args.model == "classifier":
        _train_classifier(args.data, overrides)
        return
    if args.resume:
        run_dir = runs.require_run(args.resume)
        ckpt = runs.latest_checkpoint(run_dir)
        run = Run.from_checkpoint(ckpt, device=args.device or "auto", overrides=overrides)
        print(f"resuming {run_dir} from {ckpt.name} (step {run.step})", file=sys.stderr)
    else:
        cfg = _new_config(args, overrides)
        if args.dry_run:
            import yaml

            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return
        run_dir = Path(args.out or runs.next_run_dir(Path("runs"), cfg.model, cfg.data))
        if runs.latest_checkpoint_or_none(run_dir) is not None:
            raise GankitError(
                f"{run_dir} holds a run already: --resume {run_dir}, or another --out"
            )
        run = Run(cfg, resolve_device(cfg.train.device))
        print(f"training {cfg.model} on {cfg.data} into {run_dir} ({run.device})", file=sys.stderr)
    metrics = Trainer(run, run_dir).fit()
    print(json.dumps({"run_dir": str(run_dir), "step": run.step, **metrics}))


def _train_classifier(data: str | None, overrides: list[str]) -> None:
    """`gankit train classifier --data NAME`: the evaluation classifier of a labelled dataset."""
    from gankit.config import apply, parse_overrides
    from gankit.metrics.classifier import ClassifierConfig, train_for_dataset

    if not data:
        raise GankitError("name the dataset: gankit train classifier --data mnist")
    cfg = apply(ClassifierConfig(), dict(parse_overrides(overrides)), "classifier")
    from gankit.data import data_kind

    if data_kind(data).startswith("unpaired"):  # content classes of A and B, and A vs B
        from gankit.data.unpaired import train_unpaired_classifiers

        print(json.dumps({"classifiers": train_unpaired_classifiers(data, cfg)}))
        return
    path, acc = train_for_dataset(data, cfg)
    print(json.dumps({"classifier": str(path), "test_accuracy": acc}))


def _load(args: argparse.Namespace):
    from gankit import runs
    from gankit.trainer import Run

    run_dir = runs.require_run(args.run_dir)
    ckpt = Path(args.checkpoint) if args.checkpoint else runs.latest_checkpoint(run_dir)
    return run_dir, ckpt, Run.from_checkpoint(ckpt, device=args.device)


def _sample(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise GankitError(f"--n {args.n}: the number of samples must be at least 1")
    _, ckpt, run = _load(args)
    n, nrow, kwargs = args.n, 10, {}
    if run.model.conditional:
        k = run.data.spec.num_classes
        if args.label in (None, "all"):
            nrow = max(1, n // k)
            n, kwargs = nrow * k, {"label": None}
        else:
            kwargs = {"label": _label(args.label, run.data.spec.class_names)}
        kwargs["interpolate"] = args.interpolate
    elif args.label is not None or args.interpolate:
        raise GankitError(f"{run.cfg.model} is unconditional: --label/--interpolate need cgan")
    fake = run.samples(n, seed=args.seed, **kwargs)
    out = Path(args.out)
    run.data.render(
        fake,
        out,
        title=f"{run.model.title(run.cfg.model)} step {run.step} seed {args.seed}",
        nrow=nrow,
    )
    print(f"wrote {args.n} samples from {ckpt} to {out}", file=sys.stderr)


def _label(text: str, names: list[str]) -> int:
    """A class index, or a class name as the dataset spells it (case-insensitive)."""
    if text.lstrip("-").isdigit():
        return int(text)
    lowered = [name.lower() for name in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    raise GankitError(f"--label {text!r}: give a class index 0..{len(names) - 1}, a name or 'all'")


def _translate(args: argparse.Namespace) -> None:
    from gankit.translate import run_translate

    summary = run_translate(
        args.run_dir, args.input, args.direction, args.out, args.checkpoint, args.device
    )
    print(summary, file=sys.stderr)


def _export(args: argparse.Namespace) -> None:
    from gankit.export import run_export

    print(run_export(args.run_dir, args.out, args.direction, args.checkpoint), file=sys.stderr)


def _eval(args: argparse.Namespace) -> None:
    run_dir, ckpt, run = _load(args)
    n = args.n or run.cfg.train.eval_samples
    if n < 10:
        raise GankitError(f"--n {n}: evaluate at least 10 samples")
    if args.inception < 0 or args.inception > n:
        raise GankitError(f"--inception {args.inception}: give 0..{n} (at most --n samples)")
    if args.inception:
        from gankit.metrics.fid import load_inception

        load_inception()  # a missing network fails now, not after the other scores
    metrics = {
        "step": run.step,
        "checkpoint": ckpt.name,
        "n": n,
        **run.evaluate(n, inception=args.inception),
    }
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"source": "gankit eval", **metrics}) + "\n")
    print(json.dumps(metrics, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if "=" not in a or a.startswith("-")]
    if unknown or (extra and args.command != "train"):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if args.command == "train":
        args.overrides = list(args.overrides) + extra
    from gankit.trainer import Interrupted, TrainingDiverged

    try:
        {
            "train": _train,
            "sample": _sample,
            "eval": _eval,
            "data": _data,
            "theory": _theory,
            "translate": _translate,
            "export": _export,
        }[args.command](args)
    except Interrupted as exc:
        print(f"gankit: {exc}", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"gankit: {exc}", file=sys.stderr)
        return 1
    except GankitError as exc:
        print(f"gankit: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
