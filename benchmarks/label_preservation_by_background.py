"""digits2colour B → A: how often F(b) is the right digit, by the brightness of b's background.

An analysis, not a timing: it explains where a CycleGAN's colour → grey direction loses digits.
The test B images are grouped into quarters by the mean brightness of their background pixels
(where the hidden grey digit is dark); for each quarter it prints the share of F(b) that A's
classifier reads as the true digit. It also prints the label preservation of F and that of a
perfect translator (the hidden grey digits themselves), the metric's ceiling, and how often
F(G(a)) is read as a's digit: F learns to read G's pictures, and the gap to F(b) is what G's
pictures lack of B's.

    python benchmarks/label_preservation_by_background.py RUN_DIR [--n 1000]

Needs the cached digits2colour classifiers (``gankit train classifier --data digits2colour``).
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from gankit.data.images import to_float, to_uint8
from gankit.data.pairs import build_digits2colour
from gankit.errors import GankitError
from gankit.metrics.classifier import cached_classifier, predict
from gankit.translate import load_translator


@torch.no_grad()
def in_batches(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """net(x) computed 250 images at a time."""
    return torch.cat([net(x[i : i + 250]) for i in range(0, len(x), 250)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a cyclegan or discogan run on digits2colour")
    parser.add_argument("--n", type=int, default=1000, help="test images (first n of test B)")
    args = parser.parse_args()
    checkpoints = sorted((args.run / "checkpoints").glob("step_*.pt"))
    if not checkpoints:
        raise GankitError(f"no checkpoints in {args.run / 'checkpoints'}: train the run first")
    found, found_b = (
        cached_classifier("digits2colour-A", 1, 32),
        cached_classifier("digits2colour-B", 3, 32),
    )
    if found is None or found_b is None:
        raise GankitError(
            "no digits2colour classifier: run gankit train classifier --data digits2colour"
        )
    translator = load_translator(checkpoints[-1], "BtoA", torch.device("cpu"))
    data = build_digits2colour()
    xb, labels = data.test_b.images[: args.n], data.test_b.labels[: args.n]
    true_a = data.hidden_a_of_test_b[: args.n]
    fake_a = in_batches(translator.net, to_float(xb))
    said = torch.as_tensor(predict(found[0], to_uint8(fake_a.clamp(-1, 1))))
    right = said == labels
    background = true_a[:, 0] < 30  # pixels away from the digit's strokes
    brightness = (xb.float().mean(1) * background).sum((1, 2)) / background.sum((1, 2))
    edges = torch.quantile(brightness, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    counts = torch.bincount(said, minlength=10)
    print(f"{checkpoints[-1]}: F(b) read as the true digit {right.float().mean():.1%} overall")
    print(f"  most common reading: {int(counts.argmax())} ({counts.max() / len(said):.1%})")
    # label preservation compares B's classifier on b with A's on F(b): even the true grey digit
    # in place of F(b) scores below 100%
    source = torch.as_tensor(predict(found_b[0], xb))
    ceiling = (source == torch.as_tensor(predict(found[0], true_a))).float().mean()
    print(
        f"  label preservation {(source == said).float().mean():.1%}; with the true grey "
        f"digits in place of F(b): {ceiling:.1%}"
    )
    # F learns to read digits from G(a) only (the a-cycle): how well it reads those, against
    # the real b above, measures how far G's pictures are from B's
    forward = load_translator(checkpoints[-1], "AtoB", torch.device("cpu"))
    xa, labels_a = data.test_a.images[: args.n], data.test_a.labels[: args.n]
    back = in_batches(lambda x: translator.net(forward.net(x).clamp(-1, 1)), to_float(xa))
    read = torch.as_tensor(predict(found[0], to_uint8(back.clamp(-1, 1)))) == labels_a
    print(f"  F(G(a)) read as the digit of a: {read.float().mean():.1%}")
    for q in range(4):
        lo, hi = edges[q], edges[q + 1]
        inside = (brightness >= lo) & ((brightness < hi) if q < 3 else (brightness <= hi))
        share = right[inside].float().mean()
        print(f"  background brightness {lo:5.1f}-{hi:5.1f} (quarter {q + 1}): {share:.1%}")


if __name__ == "__main__":
    try:
        main()
    except GankitError as exc:
        sys.exit(f"error: {exc}")
