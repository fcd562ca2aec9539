"""Which metrics a run gets, chosen from its data kind and the capabilities its model declares.

=================  ===========================================  ====================================
data kind          model                                        scores (``gankit.metrics``)
=================  ===========================================  ====================================
points             samples from noise                           toy: modes, quality, EM; critic
images             samples (``conditional``: per class)         classifier FID/KID + floors, cond.
                                                                accuracy; Inception FID on request
unpaired           translates (``needs_inputs``)                cycle/pair L1, label preservation,
                                                                domain success, FID/KID per side
unpaired-points    translates                                   toy scores of A → B against B
=================  ===========================================  ====================================

:class:`Evaluator` keeps what is the same at every evaluation of a run (classifiers, the real
test features) and says which scores it cannot compute and what command would enable them.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import torch
from torch import Tensor

from gankit.data import DataSource, ImageSource, ToySource, UnpairedPointsSource, UnpairedSource
from gankit.data.images import to_uint8
from gankit.device import to_device
from gankit.errors import GankitError
from gankit.metrics.classifier import (
    cached_classifier,
    classifier_features,
    classifier_path,
    predict,
)
from gankit.metrics.images import classifier_scores, inception_scores
from gankit.metrics.toy import toy_metrics
from gankit.metrics.translation import TranslationScorer, classifier_names
from gankit.models import GANModel

EVAL_SEED = 12345  # fixed so evaluations at different steps compare like with like
MIN_TEST = 20  # a real-vs-real floor needs two halves of at least 10 test images


class Evaluated(Protocol):
    """What evaluation needs of a run (``gankit.runs.Run`` has it)."""

    model: GANModel
    data: DataSource
    device: torch.device
    ema: Any
    step: int

    def samples(self, n: int, seed: int, **kwargs: Any) -> Tensor: ...

    def averaged(self) -> AbstractContextManager[None]: ...


class Evaluator:
    """Scores one run's model on its data; built once per run, called at every evaluation."""

    def __init__(self, data: DataSource, model: GANModel) -> None:
        self.data, self.model = data, model
        self.translation = TranslationScorer(data) if isinstance(data, UnpairedSource) else None
        self.classifier: tuple[Any, dict] | None = None  # image data: (network, metadata)
        self.test_features = None  # its features of the test split, the same at every eval

    def evaluate(self, run: Evaluated, n: int, inception: int = 0) -> dict[str, Any]:
        """Metrics of ``n`` samples (or translations of ``n`` test examples per side) plus the
        model's diagnostics, at a fixed seed; ``inception`` > 0 adds the Inception FID of that
        many samples (image data only; slow on a CPU)."""
        if self.translation is not None and self.model.needs_inputs:
            if inception:
                raise GankitError("--inception is not offered for translation runs")
            with evaluation_mode(run):
                both = "BtoA" in self.model.directions()
                return self.translation.scores(self.model.translate, both, n, EVAL_SEED)
        fake = run.samples(n, EVAL_SEED)
        # conditional samples come in class blocks (label=None): score them against those classes
        labels = self.model.labels_for(n, None) if self.model.conditional else None
        metrics = self.sample_scores(fake, EVAL_SEED, labels)
        real = self.data.reference(n, EVAL_SEED + 1)
        # a small folder has fewer real images than n: the diagnostics pair real with fake
        k = min(len(real), len(fake))
        with run.averaged():
            diag = self.model.diagnostics(
                to_device(real[:k], run.device),
                to_device(fake[:k], run.device),
                torch.Generator().manual_seed(EVAL_SEED),
            )
        if inception:
            metrics.update(self.inception_scores(fake[:inception], EVAL_SEED))
        if "protocol" in metrics:
            metrics["protocol"].update(seed=EVAL_SEED, ema=run.ema is not None, step=run.step)
        return {**metrics, **diag}

    def sample_scores(self, fake: Tensor, seed: int, labels: Tensor | None) -> dict[str, Any]:
        """Scores of generated samples against the data's real ones (``seed`` fixes those)."""
        data = self.data
        if isinstance(data, ToySource):
            real = data.reference(len(fake), seed)
            return toy_metrics(fake, real, data.dist.modes, data.dist.std)
        if isinstance(data, UnpairedPointsSource):  # translations A → B, scored against B
            dist = data.dist("b")
            return toy_metrics(fake, data.reference(len(fake), seed, "b"), dist.modes, dist.std)
        if isinstance(data, ImageSource):
            return self.image_scores(data, fake, seed, labels)
        return {}

    def image_scores(
        self, data: ImageSource, fake: Tensor, seed: int, labels: Tensor | None
    ) -> dict[str, Any]:
        """Classifier-feature FID/KID beside their real-vs-real floors (see
        ``gankit.metrics.images``) and, given ``labels``, the conditional accuracy: the share of
        samples the dataset's classifier puts in the requested class. Without a cached classifier
        (`gankit train classifier --data NAME`) there is nothing to score with: {}."""
        clf = self.image_classifier()
        if clf is None or data.test is None or len(data.test) < MIN_TEST:
            return {}
        network, meta = clf
        fake_u8 = to_uint8(fake)
        out: dict[str, Any] = {}
        if labels is not None:
            predicted = torch.as_tensor(predict(network, fake_u8))
            out["eval/cond_accuracy"] = float((predicted == labels.cpu()).float().mean())
        if self.test_features is None:
            self.test_features = classifier_features(network, data.test.images)
        scores = classifier_scores(
            classifier_features(network, fake_u8),
            None if labels is None else labels.cpu().numpy(),
            self.test_features,
            data.test.labels.numpy(),
            data.spec.class_names,
            seed,
        )
        scores["protocol"].update(
            feature_network="gankit SmallCNN classifier, 256-d penultimate features",
            classifier=meta.get("path", ""),
            classifier_sha256=meta["sha256"],
            classifier_test_accuracy=meta.get("test_accuracy"),
        )
        return {**out, **scores}

    def image_classifier(self) -> tuple[Any, dict] | None:
        """The image dataset's cached classifier, read and checksummed once per evaluator."""
        if self.classifier is None:
            spec = self.data.spec
            c, h = spec.shape[0], spec.shape[1]
            self.classifier = cached_classifier(spec.name, c, h)
            if self.classifier is not None:
                self.classifier[1]["path"] = str(classifier_path(spec.name, c, h))
        return self.classifier

    def inception_scores(self, fake: Tensor, seed: int) -> dict[str, Any]:
        """Inception FID of ``fake`` beside its real-vs-real floor (image data only)."""
        data = self.data
        if not isinstance(data, ImageSource):
            raise GankitError(f"Inception FID needs images; {data.spec.name} is {data.spec.kind}")
        if data.test is None or len(data.test) < MIN_TEST:
            raise GankitError(f"{data.spec.name} has too few test images for a FID floor")
        return inception_scores(to_uint8(fake), data.test.images, len(fake), seed, data.spec.name)

    def unavailable(self) -> list[str]:
        """One line per score this run cannot compute, naming the command that enables it."""
        spec, fix = self.data.spec, f"`gankit train classifier --data {self.data.spec.name}`"
        if isinstance(self.data, ImageSource):
            if self.image_classifier() is None:
                what = "cFID, cKID" + (", conditional accuracy" if self.model.conditional else "")
                return [f"no evaluation classifier for {spec.name}: {what} need {fix}"]
            if self.data.test is None or len(self.data.test) < MIN_TEST:
                return [f"{spec.name} has under {MIN_TEST} test images: no FID/KID floor"]
            return []
        if self.translation is None:
            return []
        if not 16 <= spec.shape[-1] <= 256:
            return [f"classifier scores need 16-256 px images; {spec.name} is {spec.shape[-1]} px"]
        missing = []
        if spec.num_classes and None in (self.translation.classifier(k) for k in ("A", "B")):
            missing.append("label preservation, FID/KID per side")
        if self.translation.classifier("domain") is None:
            missing.append("domain success")
        if not missing:
            return []
        names = ", ".join(classifier_names(spec.name).values())
        return [f"no classifiers {names}: {'; '.join(missing)} need {fix}"]


@contextmanager
def evaluation_mode(run: Evaluated) -> Iterator[None]:
    """The model in eval mode with its averaged (EMA) weights, restored afterwards."""
    was_training = run.model.training
    run.model.eval()
    try:
        with run.averaged():
            yield
    finally:
        run.model.train(was_training)
