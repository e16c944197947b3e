"""`bench=muse`: MUSE's six-way evaluation (Shi et al. 2024) on MUSE-News, MUSE-Books, or the embedded
fictitious corpus (offline default).

Training data is raw text (`QA(question=None, ...)`, every token a target): the target model is fine-tuned on
raw/forget + raw/retain1 + raw/retain2, the retain reference (our "retrain") on the retain texts only. Unlearning
sees the forget set (raw/forget, or a scal/sust fold) and raw/retain1, as swj0419/muse_bench
baselines/scripts/unlearn_news.sh passes `--data_file raw/forget --retain_data_file raw/retain1`.

Criteria, following swj0419/muse_bench eval.py `eval_model`:
  C1 forget/verbmem   ROUGE-L F1 of a greedy 128-token continuation of each verbmem prompt (`verbmem_f`)
  C2 forget/knowmem   ROUGE-L F1 of greedy few-shot answers to forget_qa (`knowmem_f`)
  C3 forget/privleak  (AUC - AUC_retrain) / AUC_retrain * 100 on Min-40% forget-vs-holdout AUC (`privleak`)
  C4 retain/knowmem   as C2 on retain_qa (`knowmem_r`)
  C5/C6               `forget_source=scal|sust` with `forget_split=forget_1..4` (see conf/bench/muse.yaml)
ROUGE scores are fractions in [0, 1]; MUSE's tables show them x100. Every MIA attack's forget-vs-holdout and
retain-vs-holdout AUC is reported too (orientation in the `muse_mia.json` log, from `mia.ORIENTATION`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from unlearn_bench.benchmarks.muse.config import MuseConfig
from unlearn_bench.benchmarks.base import SELF_REFERENCE, BenchData, EvalOutput, Metric
from unlearn_bench.benchmarks.fictitious.muse_corpus import MuseCorpus, fictitious_corpus
from unlearn_bench.benchmarks.muse.data import (
    KNOWMEM_QA_SPLITS,
    SPLITS,
    load_icl,
    load_knowmem,
    load_privleak,
    load_raw,
    load_texts,
    load_verbmem,
)
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.mia_eval import ATTACKS, memorization_rows, mia_scores
from unlearn_bench.benchmarks.open_unlearning import MUSE_NAMES, eval_files
from unlearn_bench.metrics import mia
from unlearn_bench.benchmarks.muse.metrics import (
    PRIVLEAK_MIN_K,
    RETRAIN_AUC,
    knowmem_answer,
    knowmem_prompt,
    knowmem_score,
    verbmem_reference,
    verbmem_score,
)

log = logging.getLogger(__name__)

CORPORA = ("news", "books", "fictitious")
FORGET_SOURCES = ("raw", "scal", "sust")
SUST_ALL = "all"  # forget_source=sust: every sust fold, unlearned one after another by the sequential diagnostic
# Chunks are cut by words before any tokenizer exists (the tiny model's is trained on this very text). Llama
# spends ~1.3 tokens per English word, the tiny byte-level BPE ~1.6 (vocab 1024) to ~2.9 (vocab 400) on the
# fictitious corpus's invented names; 0.3 words a token fits all of them.
WORDS_PER_TOKEN = 0.3
# How raw texts are trained on: `chunks`, each document cut into word chunks of about chunk_tokens tokens, one
# example each (BOS ... EOS); `windows`, MUSE's baselines' layout (baselines/baselines/dataset.py `DefaultDataset`
# on load_data.py's raw/<split>.txt): the documents joined by a blank line and cut into chunk_tokens-token windows.
TRAIN_LAYOUTS = ("chunks", "windows")


def word_chunks(text: str, max_words: int) -> list[str]:
    """`text` cut into pieces of at most `max_words` words, each an exact substring (whitespace kept)."""
    words = re.findall(r"\S+\s*", text)
    return ["".join(words[i : i + max_words]).strip() for i in range(0, len(words), max_words)]


def _unique(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def load_corpus(cfg: MuseConfig) -> MuseCorpus:
    """The splits a run reads: generated (fictitious) or from the hub / a local copy through `muse_data`."""
    if cfg.corpus == "fictitious":
        return fictitious_corpus(cfg.num_authors, cfg.world_seed, cfg.holdout_percent)
    c, d = cfg.corpus, cfg.data_dir
    texts = {("raw", split): load_raw(c, split, d) for split in ("forget", "retain1", "retain2")}
    texts |= {("privleak", split): t for split, t in load_privleak(c, d).items()}
    if cfg.forget_source != "raw":
        folds = SPLITS["sust"] if cfg.forget_split == SUST_ALL else (cfg.forget_split,)
        texts |= {(cfg.forget_source, fold): load_texts(c, cfg.forget_source, fold, d) for fold in folds}
    return MuseCorpus(
        texts=texts,
        knowmem={split: load_knowmem(c, split, d) for split in KNOWMEM_QA_SPLITS},
        icl={split: load_icl(c, split, d) for split in KNOWMEM_QA_SPLITS},
        verbmem=load_verbmem(c, d),
    )


class MuseBenchmark:
    name = "muse"

    def __init__(self, cfg: MuseConfig) -> None:
        if cfg.corpus not in CORPORA:
            raise ValueError(f"bench.corpus='{cfg.corpus}' is not one of {CORPORA}")
        if cfg.corpus == "fictitious" and cfg.data_dir is not None:
            raise ValueError("bench.data_dir applies to corpus=news|books; "
                             "the fictitious corpus is generated in memory")
        if cfg.forget_source not in FORGET_SOURCES:
            raise ValueError(f"bench.forget_source='{cfg.forget_source}' is not one of {FORGET_SOURCES}")
        allowed = ("forget",) if cfg.forget_source == "raw" else SPLITS[cfg.forget_source]
        if cfg.forget_source == "sust":
            allowed += (SUST_ALL,)
        if cfg.forget_split not in allowed:
            raise ValueError(f"bench.forget_split='{cfg.forget_split}' with forget_source={cfg.forget_source}: "
                             f"choose from {list(allowed)}")
        if cfg.privleak_reference not in ("retrain", "published"):
            raise ValueError(f"bench.privleak_reference='{cfg.privleak_reference}' is not retrain or published")
        if cfg.privleak_reference == "published" and cfg.corpus not in RETRAIN_AUC:
            raise ValueError(f"MUSE published no retrain AUC for corpus '{cfg.corpus}': use privleak_reference=retrain")
        if cfg.train_layout not in TRAIN_LAYOUTS:
            raise ValueError(f"bench.train_layout='{cfg.train_layout}' is not one of {TRAIN_LAYOUTS}")
        if cfg.chunk_tokens < 2:
            raise ValueError(f"bench.chunk_tokens={cfg.chunk_tokens} must be at least 2")
        self.cfg = cfg

    @cached_property
    def corpus(self) -> MuseCorpus:
        return load_corpus(self.cfg)

    def _records(self, texts: Sequence[str]) -> list[QA]:
        """The training records of `texts`: word chunks, or (windows) whole documents, cut into token windows when
        batched (`collate.token_windows`), per set, so each set's windows are those of its own MUSE .txt file."""
        if self.cfg.train_layout == "windows":
            return [QA(None, text) for text in texts]
        max_words = max(1, int(self.cfg.chunk_tokens * WORDS_PER_TOKEN))
        return [QA(None, chunk) for text in texts for chunk in word_chunks(text, max_words)]

    @cached_property
    def train_sets(self) -> dict[str, list[QA]]:
        """target / retain fine-tuning sets and the forget / retain sets of unlearning."""
        t = self.corpus.texts
        forget = [x for fold in self.forget_folds() for x in t[(self.cfg.forget_source, fold)]]
        raw_retain = t[("raw", "retain1")] + t[("raw", "retain2")]
        dropped = set(forget)  # a scal/sust fold may reach into the retain texts: the retrain model never sees it
        return {
            "target": self._records(_unique(t[("raw", "forget")] + raw_retain + forget)),
            "retain": self._records([x for x in _unique(raw_retain) if x not in dropped]),
            "forget": self._records(forget),
            "unlearn_retain": self._records(t[("raw", "retain1")]),
        }

    def forget_folds(self) -> tuple[str, ...]:
        """The folds the forget set is made of: one, or MUSE's four sust folds in order (C6)."""
        return SPLITS["sust"] if self.cfg.forget_split == SUST_ALL else (self.cfg.forget_split,)

    def request_sizes(self) -> list[int] | None:
        """With forget_split=all (sust), the forget set's records (chunks, or documents with windows) per sust fold:
        the sequential diagnostic's requests, so C6 unlearns MUSE's folds one after another (swj0419/muse_bench,
        sustainability); with windows each request's documents are cut into windows of their own, as MUSE
        tokenizes sust/forget_<k>.txt."""
        if self.cfg.forget_split != SUST_ALL:
            return None
        return [len(self._records(self.corpus.texts[("sust", fold)])) for fold in self.forget_folds()]

    def data(self) -> BenchData:
        s, c = self.train_sets, self.corpus
        # scal/sust folds are left out so that every fold of a sweep trains the tiny model's tokenizer on the same text
        corpus_text = [x for (config, _), texts in c.texts.items() if config in ("raw", "privleak") for x in texts]
        qa_sets = list(c.knowmem.values()) + list(c.icl.values())
        corpus_text += [f"{q.question} {q.answer}" for qa in qa_sets for q in qa]
        corpus_text += [r["prompt"] + " " + r["gt"] for r in c.verbmem]
        return BenchData(
            target_train=s["target"],
            retain_train=s["retain"],
            forget=s["forget"],
            retain=s["unlearn_retain"],
            tokenizer_corpus=corpus_text,
            train_window=self.cfg.chunk_tokens if self.cfg.train_layout == "windows" else None,
        )

    def data_key(self, role: str) -> dict[str, Any]:
        # The digest of the fine-tuning records themselves: a scal/sust sweep that leaves the target's data unchanged
        # reuses its cached model, and a changed hub dataset, chunk size or layout does not.
        chunks = [qa.answer for qa in self.train_sets[role]]
        digest = hashlib.sha256(json.dumps(chunks).encode("utf-8")).hexdigest()
        key = {"name": self.name, "corpus": self.cfg.corpus, "chunks_sha256": digest}
        if self.cfg.train_layout != "chunks":  # chunks keep the data key they had
            key |= {"train_layout": self.cfg.train_layout, "window": self.cfg.chunk_tokens}
        return key

    def check_inputs(self) -> None:
        """Evaluation reads verbmem, knowmem (and its ICL shots) and privleak: `load_corpus` reads and parses them
        with the training texts (news/books; the hub's are downloaded then), so a bad file fails here."""
        self.corpus

    def evaluate(self, lm: LM, reference: dict[str, Any] | None) -> EvalOutput:
        cap = self.cfg.eval_max_examples
        metrics, generations = [], []

        verb = self.corpus.verbmem[:cap]
        continuations = lm.generate([r["prompt"] for r in verb], self.cfg.verbmem_max_new_tokens, raw=True)
        refs = [verbmem_reference(r["gt"], lm.tokenizer, self.cfg.verbmem_max_new_tokens) for r in verb]
        verb_scores = [verbmem_score(g, ref) for g, ref in zip(continuations, refs)]
        metrics.append(Metric("forget", "verbmem", float(np.mean(verb_scores)), False))
        generations += [{"split": "verbmem_forget", "prompt": r["prompt"], "generation": g, "reference": ref,
                         "rougeL_f1": s} for r, g, ref, s in zip(verb, continuations, refs, verb_scores)]
        # open-unlearning's MUSE extraction strength / exact memorization: on the verbmem prompt and its full
        # continuation (configs/eval/muse_metrics/extraction_strength.yaml, MUSE_forget_verbmem).
        rows, memorization = memorization_rows(lm, "forget", [QA(r["prompt"], r["gt"]) for r in verb], raw=True,
                                               prefix="verbmem_")
        metrics += rows

        qa = {"forget": self.corpus.knowmem["forget_qa"][:cap],
              "retain": self.corpus.knowmem["retain_qa"][: min(cap, self.cfg.retain_eval_examples)]}
        prompts = [knowmem_prompt(q.question, self.corpus.icl[f"{split}_qa"]) for split, qs in qa.items() for q in qs]
        answers = iter(lm.generate(prompts, self.cfg.max_new_tokens, raw=True))
        for split, qs in qa.items():
            gens = [next(answers) for _ in qs]
            scores = [knowmem_score(g, q.answer) for g, q in zip(gens, qs)]
            metrics.append(Metric(split, "knowmem", float(np.mean(scores)), split == "retain"))
            generations += [{"split": f"knowmem_{split}", "prompt": q.question, "generation": knowmem_answer(g),
                             "reference": q.answer, "rougeL_f1": s} for q, g, s in zip(qs, gens, scores)]

        mia_metrics, mia_log, auc = self._privleak(lm, reference)
        metrics += mia_metrics
        logs = {"muse_mia.json": mia_log} | eval_files(
            "MUSE", metrics, MUSE_NAMES, {k: [{"score": x} for x in v] for k, v in memorization.items()})
        return EvalOutput(metrics, generations, logs, {"forget_holdout_auc": auc})

    def _privleak(self, lm: LM, reference: dict[str, Any] | None
                  ) -> tuple[list[Metric], dict[str, Any], dict[str, float]]:
        """C3 and the MIA rows: each attack's AUC on forget-vs-holdout and retain-vs-holdout privleak texts."""
        cap = self.cfg.eval_max_examples
        texts = {split: self.corpus.texts[("privleak", split)][:cap] for split in SPLITS["privleak"]}
        scores = {split: mia_scores(lm, [QA(None, x) for x in t], PRIVLEAK_MIN_K) for split, t in texts.items()}
        aucs = {f"{members}_holdout": {a: mia.mia_auc(scores[members][a], scores["holdout"][a]) for a in ATTACKS}
                for members in ("forget", "retain")}
        metrics = [Metric(pair, f"auc_{a}", v, None) for pair, by_attack in aucs.items() for a, v in by_attack.items()]
        own = aucs["forget_holdout"]["min_k"]
        retrain = self._retrain_auc(own, reference)
        if retrain is None:
            log.warning("no retrain AUC for corpus '%s' (no retain reference evaluated): privleak not reported",
                        self.cfg.corpus)
        else:
            value, source = retrain
            metrics.append(Metric("forget_holdout", f"auc_min_k_retrain_{source}", value, None))
            if value == 1.0:  # MUSE's AUC 0: PrivLeak divides by it (small privleak sets can get there by chance)
                log.warning("the retrain AUC is 1.0 (MUSE's 0): privleak is undefined and not reported")
            else:
                # 0 = as the retrain model; -100 = forget set fully exposed; > 0 = over-unlearned
                metrics.append(Metric("forget", "privleak", mia.privleak(own, value), None))
        log_ = {
            "orientation": {a: mia.orientation(a) for a in ATTACKS},
            "k": PRIVLEAK_MIN_K,
            "auc": aucs,
            "retrain_auc": None if retrain is None else {"value": retrain[0], "source": retrain[1]},
            "scores": scores,
        }
        return metrics, log_, aucs["forget_holdout"]

    def _retrain_auc(self, own: float, reference: dict[str, Any] | None) -> tuple[float, str] | None:
        """AUC_retrain: this model's own AUC when it is the retrain model, the retain reference's when it was
        evaluated, else MUSE's published constant (constants.py AUC_RETRAIN) for news/books."""
        if self.cfg.privleak_reference == "retrain":
            if reference is SELF_REFERENCE:
                return own, "model"
            if reference and "forget_holdout_auc" in reference:
                return reference["forget_holdout_auc"]["min_k"], "model"
        if self.cfg.corpus in RETRAIN_AUC:
            return RETRAIN_AUC[self.cfg.corpus], "published"
        return None


def build(cfg: MuseConfig) -> MuseBenchmark:
    return MuseBenchmark(cfg)
