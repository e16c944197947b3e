"""Representation probe: is a forgotten attribute still linearly readable from the hidden states?

A logistic-regression probe on one layer's hidden states (mean over the question's tokens) is trained on
retain questions to predict an attribute value (e.g. the genre in "What genre does X write?",
`EvalQA.meta["attribute"]`/`["value"]`) and tested on the forget questions of the same attribute
(the question and its paraphrase). Probing as in Lynch et al. 2024 (arXiv:2402.16835, "latent knowledge"
probes) and Patil et al. 2024, "Can sensitive information be deleted from LLMs?" (ICLR, arXiv:2309.17410):
outputs can hide what intermediate representations still encode. The retain model, which never saw the forget
authors, is the floor of the knowledge share. A test example's score is the probe's mean correctness over the
question and its paraphrase (one example, one group member: they are not independent samples).
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import PreTrainedModel

from unlearn_bench.diagnostics.settings import ProbeConfig
from unlearn_bench.data.collate import pad_batch
from unlearn_bench.data.records import EvalQA, iter_chunks
from unlearn_bench.runtime.device import eval_device
from unlearn_bench.diagnostics.common import Attack, DiagInputs
from unlearn_bench.evaluation.lm import LM

log = logging.getLogger(__name__)


def choose_attribute(train: Sequence[EvalQA], test: Sequence[EvalQA]) -> int | None:
    """The attribute whose forget values are most often among the retain values (a probe can only predict
    values it was trained on), ties to the fewest classes; None when no attribute qualifies."""
    best, best_key = None, None
    for attr in {ex.meta["attribute"] for ex in test if "attribute" in ex.meta}:
        seen = {ex.meta["value"] for ex in train if ex.meta.get("attribute") == attr}
        values = [ex.meta["value"] for ex in test if ex.meta.get("attribute") == attr]
        coverage = sum(v in seen for v in values) / len(values)
        key = (coverage, -len(seen))
        if coverage > 0 and len(seen) > 1 and (best_key is None or key > best_key):
            best, best_key = attr, key
    return best


def labelled_questions(examples: Sequence[EvalQA], attribute: int) -> tuple[list[str], list[str], list[int]]:
    """(questions, values, owners) of one attribute: each question and, where present, its paraphrase, with the
    index into `examples` of the example each belongs to (a paraphrase is part of its question's example)."""
    questions, values, owners = [], [], []
    for i, ex in enumerate(examples):
        if ex.meta.get("attribute") == attribute:
            for q in (ex.question, ex.paraphrased_question):
                if q:
                    questions.append(q)
                    values.append(ex.meta["value"])
                    owners.append(i)
    return questions, values, owners


@torch.inference_mode()
def question_features(lm: LM, questions: Sequence[str], layer: int) -> np.ndarray:
    """Hidden states of `layer`, mean over each prompted question's tokens: [n, hidden]."""
    device = eval_device(lm.model)
    lm.model.eval()
    out = []
    for chunk in iter_chunks(list(questions), lm.batch_size):
        ids = [lm.fmt.prompt_ids(q, lm.tokenizer)[-lm.max_length :] for q in chunk]
        batch = pad_batch([(i, i) for i in ids], lm.pad_id).to(device)
        hidden = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                          output_hidden_states=True).hidden_states[layer].float()
        mask = batch.attention_mask.unsqueeze(-1).float()
        out.append(((hidden * mask).sum(1) / mask.sum(1)).cpu().numpy())
    return np.concatenate(out)


def probe_correct(train_x: np.ndarray, train_y: Sequence[str], test_x: np.ndarray, test_y: Sequence[str],
                  C: float, seed: int) -> np.ndarray:
    """1 per test example the probe (standardised features, logistic regression) labels correctly."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    probe.fit(train_x, list(train_y))
    return (probe.predict(test_x) == np.asarray(test_y)).astype(float)


def per_example(correct: np.ndarray, owners: Sequence[int], index: Sequence[int]) -> np.ndarray:
    """Mean correctness of each example's questions (question and paraphrase), in the order of `index`."""
    owners = np.asarray(owners)
    return np.asarray([correct[owners == i].mean() for i in index])


def attacks(inputs: DiagInputs, cfg: ProbeConfig) -> list[Attack]:
    # The uncapped splits where the adapter exposes them: the probe needs many retain authors to learn from.
    splits = inputs.bench.splits() if hasattr(inputs.bench, "splits") else inputs.bench.eval_splits()
    train, test = splits["retain"], inputs.forget_examples
    attribute = cfg.attribute if cfg.attribute is not None else choose_attribute(train, test)
    if attribute is None:
        raise ValueError("eval.diagnostics has probe, but no attribute (EvalQA.meta attribute/value) is shared by "
                         "retain and forget questions")
    (train_q, train_y, _), (test_q, test_y, owners) = labelled_questions(train, attribute), labelled_questions(test, attribute)
    if len(set(train_y)) < 2 or not test_q:
        raise ValueError(f"eval.diag.probe.attribute={attribute}: needs >= 2 values among retain questions and "
                         f"some forget questions, got {len(set(train_y))} values and {len(test_q)} questions")
    index = list(dict.fromkeys(owners))
    log.info("probe: attribute %s, %d train / %d test questions, top classes %s", attribute, len(train_q), len(test_q),
             Counter(train_y).most_common(3))

    def score(model: PreTrainedModel, _: object) -> np.ndarray:  # white-box: hidden states of the bare weights
        n_layers = model.config.num_hidden_layers
        layer = cfg.layer if cfg.layer is not None else n_layers // 2
        if not 0 <= layer <= n_layers:
            raise ValueError(f"eval.diag.probe.layer={layer}: the model has hidden states 0..{n_layers}")
        lm = inputs.lm(model)
        correct = probe_correct(question_features(lm, train_q, layer), train_y, question_features(lm, test_q, layer),
                                test_y, cfg.C, inputs.seed)
        return per_example(correct, owners, index)

    return [Attack("probe", "probe_accuracy", index, score, {"attribute": attribute, "layer": cfg.layer, "C": cfg.C},
                   white_box=True, weight_access=True)]
