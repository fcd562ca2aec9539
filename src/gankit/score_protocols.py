"""What each logged metric key means: which way is better, and how the score is measured.

Read by ``gankit report`` (captions, the "better" column, the protocol table, which keys are
another score's floor); kept apart from it because it is data about the scores, not about pages.
"""

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """How to read the metric keys matching ``pattern`` (fnmatch): which way is better
    ("lower", "higher" or "" when neither is) and how the score is measured."""

    pattern: str
    better: str
    protocol: str


SCORES = (
    Score(
        "eval/em",
        "lower",
        "Exact Earth-Mover (W1) distance between eval_samples generated points and as many real "
        "points (uniform weights, Euclidean cost, POT emd2). Floor: the same distance between two "
        "independent real sets of that size.",
    ),
    Score(
        "eval/modes",
        "higher",
        "Modes holding at least 1% of the generated points within 3 standard deviations; the "
        "reference line is the number of modes (eval/modes_total).",
    ),
    Score(
        "eval/high_quality",
        "higher",
        "Share of generated points within 3 standard deviations of some mode. Floor: the share "
        "of real points that are.",
    ),
    Score(
        "eval/grad_norm_*",
        "",
        "Norm of the critic's input gradient on random interpolates between real and generated "
        "points; a 1-Lipschitz critic stays at or below 1.",
    ),
    Score(
        "eval/critic_estimate",
        "",
        "E[D(real)] - E[D(fake)] on eval_samples points: for a 1-Lipschitz WGAN critic an "
        "estimate of the Earth-Mover distance, shrinking as the generator improves.",
    ),
    Score(
        "eval/lipschitz/*",
        "",
        "Bounds on the critic's Lipschitz constant: lower bounds from gradients and point pairs, "
        "an upper bound from the product of its layers' spectral norms.",
    ),
    Score(
        "eval/cfid*",
        "lower",
        "Classifier-feature FID: Frechet distance between the 256-d penultimate features of the "
        "dataset's evaluation classifier on generated images and on half R of the test split. "
        "Floor: half F of the test split against half R, same count. Per class: fakes by the "
        "requested label, reals by their true label.",
    ),
    Score(
        "eval/ckid",
        "lower",
        "Classifier-feature KID (cubic kernel, 50 subsets of min(1000, n)) against test half R; "
        "unbiased at any sample count. Floor: test half F against half R.",
    ),
    Score(
        "eval/cond_accuracy",
        "higher",
        "Share of conditional samples that the dataset's evaluation classifier puts in the "
        "class they were generated for (chance: 1 / classes).",
    ),
    Score(
        "eval/fid_inception",
        "lower",
        "Inception-v3 FID (pool features, 2048-d) against half R of the test split, beside the "
        "floor of half F; computed only on request (gankit eval --inception N).",
    ),
    Score(
        "eval/cycle_l1_*",
        "lower",
        "Mean absolute pixel difference (images in [-1, 1]) between a test image and its round "
        "trip: F(G(a)) for _a, G(F(b)) for _b.",
    ),
    Score(
        "eval/pair_l1_*",
        "lower",
        "Mean absolute pixel difference between a translation and the hidden true image of the "
        "other domain; the reference line is doing nothing (eval/identity_l1_*).",
    ),
    Score(
        "eval/identity_l1_*",
        "",
        "The do-nothing baseline of pair_l1: the input itself (channel-matched) against the "
        "hidden true image.",
    ),
    Score(
        "eval/label_preservation_*",
        "higher",
        "Share of test images whose class by the source domain's classifier equals the class of "
        "their translation by the target domain's classifier.",
    ),
    Score(
        "eval/domain_success_*",
        "higher",
        "Share of translations that the A-vs-B domain classifier assigns to the target domain.",
    ),
    Score(
        "eval/fid_*",
        "lower",
        "FID of translations against half of the target domain's test split on the target "
        "classifier's features (the domain classifier's for unlabelled pairs). Floor: the other "
        "half, same count.",
    ),
    Score(
        "eval/kid_*",
        "lower",
        "KID of translations against half of the target domain's test split; floor: the other "
        "half.",
    ),
    Score("loss/*", "", "Training loss, the mean over each log window of log_every steps."),
)
UNKNOWN = Score("*", "", "Logged by the model's train_step or diagnostics.")


def score_of(key: str) -> Score:
    """The first entry of SCORES whose pattern matches ``key``."""
    return next((s for s in SCORES if fnmatch.fnmatchcase(key, s.pattern)), UNKNOWN)


def score_order(key: str) -> tuple[int, str]:
    """Sort key: the order of SCORES (quality scores before diagnostics), then the name."""
    score = score_of(key)
    return (SCORES.index(score) if score in SCORES else len(SCORES), key)


def is_reference(key: str) -> bool:
    """Keys that are another score's floor or baseline, drawn beside it rather than alone."""
    return (
        key.endswith("_floor")
        or "_floor_class/" in key
        or key == "eval/modes_total"
        or key.startswith("eval/identity_l1_")
    )


def is_per_class(key: str) -> bool:
    return key.startswith("eval/cfid_class/")


def reference_key(key: str) -> tuple[str, str] | None:
    """(the key of ``key``'s floor or baseline, how to name it), or None."""
    if is_per_class(key):
        return key.replace("eval/cfid_class/", "eval/cfid_floor_class/"), "real-vs-real floor"
    if key == "eval/modes":
        return "eval/modes_total", "all modes"
    if key.startswith("eval/pair_l1_"):
        return key.replace("pair_l1", "identity_l1"), "do-nothing baseline"
    return key + "_floor", "real-vs-real floor"
