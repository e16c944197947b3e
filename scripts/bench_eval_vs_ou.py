"""Our TOFU evaluation against open-unlearning's own evaluator, on the same checkpoint and the same work.

Both tools evaluate one tiny Llama (conf/model/tiny.yaml's architecture, trained on 256-token examples, a 512-token context, the llama2 prompt
format that open-unlearning's configs/model/Llama-2-7b-chat-hf.yaml templates the same way) fine-tuned by us on
real TOFU `full`: all 400 forget10 questions and TOFU's other three perturbed splits, forget quality and privleak
against a retain model's TOFU_EVAL.json (a second checkpoint fine-tuned on retain90, evaluated by
open-unlearning once, untimed), open-unlearning's default TOFU metrics plus exact memorization and all four MIA
attacks. Each side runs in a fresh process, the two interleaved over `--rounds`, each with `--threads` threads;
the table gives each phase's median seconds and the ratio open-unlearning / ours (phases as our
`cost/eval_<phase>_seconds` rows; `scripts/ou_timed_eval.py` files open-unlearning's metric functions under the
same names; `total` includes dataset loading and tokenization on both sides). Then every per-example value of
the last round is compared (losses, probabilities, truth ratios, paraphrased and perturbed losses, ROUGE-L,
generations, extraction strength, exact memorization, each attack's forget and holdout scores) and the
aggregates: the run fails if any differs by more than 1e-5 per example or 1e-6 in aggregate, or if two greedy
generations differ other than at a near tie (the two tokens' logits within 1e-4 where they part; that question's
ROUGE-L and the aggregates that average it are then left out of the tolerance check).

    OU_VENV=<venv with open-unlearning's requirements> OU_REPO=<locuslab/open-unlearning checkout> \\
        .venv/bin/python scripts/bench_eval_vs_ou.py

open-unlearning's venv, as measured (its checkout at d3d7cf9; its requirements pin these, DeepSpeed without
its compiled ops):

    python3 -m venv ou && ou/bin/pip install torch==2.13.0 && ou/bin/pip install transformers==4.45.1 \\
        huggingface-hub==0.29.1 numpy==2.2.3 hydra-core==1.3 hydra_colorlog==1.2.0 datasets==3.0.1 \\
        accelerate==0.34.2 rouge-score==0.1.2 scipy==1.14.1 scikit-learn==1.5.2 lm-eval==0.4.8 \\
        && DS_BUILD_OPS=0 ou/bin/pip install deepspeed==0.15.4

Without OU_VENV / OU_REPO, or where they lack a Python or open-unlearning's src/eval.py, it says so and times
ours alone. The checkpoints are built once under `--work` (a minute or two each on 2 cores) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
TRAIN_LENGTH = 256     # tokens of a training example (prompt and answer)
# The model's context: open-unlearning's QADataset cuts at 512 tokens (configs/data/datasets/TOFU_QA_*.yaml) and we
# cut at the model's context, so with 512 neither cuts (5 forget10 answers pass 256 tokens with this tokenizer).
CONTEXT = 512
PHASES = ("scoring", "generation", "mia", "memorization")
PER_EXAMPLE_TOL, AGGREGATE_TOL = 1e-5, 1e-6
# open-unlearning metrics beyond its default TOFU suite (configs/eval/tofu.yaml) that our evaluation also reports
OU_EXTRA_METRICS = "exact_memorization,mia_loss,mia_zlib,mia_min_k,mia_min_k_plus_plus"


def build_checkpoints(work: Path, data_dir: Path, epochs: int) -> dict[str, Path]:
    """`target` fine-tuned on TOFU `full`, `retain` on retain90, one tokenizer trained on the TOFU corpus; built
    once, saved with the fields transformers 4.45 reads (models/compat.py)."""
    out = {role: work / "checkpoints" / role for role in ("target", "retain")}
    if all((p / "config.json").is_file() for p in out.values()):
        return out
    from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
    from unlearn_bench.benchmarks.tofu.config import TofuConfig
    from unlearn_bench.benchmarks.tofu.data import load_tofu_split, split_path, to_qa
    from unlearn_bench.config import FinetuneConfig
    from unlearn_bench.data.collate import PromptFormat
    from unlearn_bench.models.loading import save
    from unlearn_bench.models.tiny import build_tiny_model, train_tokenizer
    from unlearn_bench.runtime.device import make_accelerator, seed_everything
    from unlearn_bench.training.recipes import finetune

    corpus = TofuBenchmark(TofuConfig(data_dir=str(data_dir))).data().tokenizer_corpus
    for (role, path), split in zip(out.items(), ("full", "retain90")):
        seed_everything(0)
        tokenizer = train_tokenizer(corpus, 1024)
        model = build_tiny_model(tokenizer, max_position_embeddings=CONTEXT)  # RoPE: no weights per position
        cfg = FinetuneConfig(lr=4e-3, epochs=epochs, batch_size=32, warmup_ratio=0.02, weight_decay=0.0)
        print(f"building the {role} checkpoint: {epochs} epochs on TOFU {split}", flush=True)
        finetune(model, tokenizer, to_qa(load_tofu_split(split, data_dir), split_path(split, data_dir)),
                 PromptFormat("llama2"), cfg, TRAIN_LENGTH, 0, make_accelerator(cpu=True), desc=role)
        save(model.eval(), tokenizer, path)
    return out


def open_unlearning() -> tuple[Path, Path] | None:
    """(python, checkout) of open-unlearning from OU_VENV / OU_REPO; None, saying why, when either is unusable."""
    venv, repo = os.environ.get("OU_VENV"), os.environ.get("OU_REPO")
    if not venv or not repo:
        print("OU_VENV and OU_REPO are not both set: timing ours alone")
        return None
    python, evaluator = Path(venv) / "bin" / "python", Path(repo) / "src" / "eval.py"
    for path, what in ((python, "OU_VENV has no bin/python"), (evaluator, "OU_REPO has no src/eval.py (open-unlearning's evaluator)")):
        if not path.is_file():
            print(f"{path}: {what}: timing ours alone")
            return None
    return python, Path(repo)


def ou_data_folder(work: Path, data_dir: Path) -> Path:
    """A folder holding `locuslab/TOFU` as a local dataset (a README's `configs` naming each split's file), so
    open-unlearning's dataset configs (`path: locuslab/TOFU`, `name: <split>`) load our files unchanged."""
    root = work / "ou_cwd"
    dataset = root / "locuslab" / "TOFU"
    dataset.mkdir(parents=True, exist_ok=True)
    lines = ["---", "configs:"]
    for file in sorted(data_dir.glob("*.json")):
        link = dataset / file.name
        if not link.exists():
            link.symlink_to(file.resolve())
        lines += [f"- config_name: {file.stem}", "  data_files:", "  - split: train", f"    path: {file.name}"]
    (dataset / "README.md").write_text("\n".join([*lines, "---", ""]))
    return root


def run_ou(ou: tuple[Path, Path], cwd: Path, checkpoint: Path, out: Path, retain_log: Path | None, threads: int) -> dict[str, float]:
    python, repo = ou
    shutil.rmtree(out, ignore_errors=True)  # open-unlearning skips the metrics a TOFU_EVAL.json there already holds
    overrides = [
        "model=Llama-2-7b-chat-hf", f"model.model_args.pretrained_model_name_or_path={checkpoint}",
        f"model.tokenizer_args.pretrained_model_name_or_path={checkpoint}", "model.model_args.attn_implementation=sdpa",
        "model.model_args.torch_dtype=float32", "model.model_args.device_map=cpu", "eval=tofu",
        "eval.tofu.forget_split=forget10", "eval.tofu.holdout_split=holdout10", f"+eval/tofu_metrics=[{OU_EXTRA_METRICS}]",
        f"eval.tofu.retain_logs_path={retain_log or 'null'}", "task_name=bench_eval_vs_ou", f"paths.output_dir={out}",
    ]
    timings = out / "timings.json"
    command = [str(python), str(REPO / "scripts" / "ou_timed_eval.py"), str(repo), str(timings), *overrides]
    finished = subprocess.run(command, cwd=cwd, env=one_job_env(threads), capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"open-unlearning's evaluator failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    return json.loads(timings.read_text())


def run_ours(checkpoint: Path, out: Path, retain_log: Path, data_dir: Path, threads: int, batch_size: int) -> dict[str, float]:
    shutil.rmtree(out, ignore_errors=True)  # no earlier round's files left to pass for this one's
    command = [sys.executable, __file__, "--ours-once", str(checkpoint), str(out), str(retain_log),
               "--data-dir", str(data_dir), "--batch-size", str(batch_size)]
    finished = subprocess.run(command, env=one_job_env(threads), capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"our evaluation failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    return json.loads((out / "timings.json").read_text())


def one_job_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}


def ours_once(checkpoint: Path, out: Path, retain_log: Path, data_dir: Path, batch_size: int) -> None:
    """Our TOFU evaluation (what `unlearn-bench bench=tofu` runs) of `checkpoint`: its logs and phase times."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
    from unlearn_bench.benchmarks.tofu.config import TofuConfig
    from unlearn_bench.config import EvalConfig
    from unlearn_bench.data.collate import PromptFormat
    from unlearn_bench.evaluation.lm import eval_lm

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    lm = eval_lm(model, AutoTokenizer.from_pretrained(checkpoint), PromptFormat("llama2"), CONTEXT, batch_size,
                 generation_batch_size=EvalConfig().generation_batch_size)
    start = time.perf_counter()
    bench = TofuBenchmark(TofuConfig(data_dir=str(data_dir), forget_split="forget10", eval_max_examples=None,
                                     retain_logs_path=str(retain_log) if retain_log.is_file() else None))
    result = bench.evaluate(lm, None)
    timings = {"total": time.perf_counter() - start}
    timings |= {m.metric[len("eval_"):-len("_seconds")]: m.value for m in result.metrics
                if m.split == "cost" and m.metric.startswith("eval_")}
    out.mkdir(parents=True, exist_ok=True)
    for name, content in result.logs.items():
        (out / name).write_text(json.dumps(content, indent=1))
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")


# --- agreement ------------------------------------------------------------------------------------------------------

def _values(entry: dict[str, Any], field: str) -> list[float]:
    """Per-example `field` of an open-unlearning metric entry, flattened in index order."""
    out: list[float] = []
    for _, value in sorted(entry["value_by_index"].items(), key=lambda kv: int(kv[0])):
        v = value[field]
        out += [float(x) for x in v] if isinstance(v, list) else [float(v)]
    return out


def _ours_log(ours: Path, name: str, field: str) -> list[float]:
    log = json.loads((ours / name).read_text())[field]
    out: list[float] = []
    for _, v in sorted(log.items(), key=lambda kv: int(kv[0])):
        out += [float(x) for x in v] if isinstance(v, list) else [float(v)]
    return out


def comparisons(ou: dict[str, Any], ours_eval: dict[str, Any], ours: Path) -> Iterator[tuple[str, list[float], list[float]]]:
    """(what, open-unlearning's values, ours) for every per-example quantity both write."""
    for name, field in (("forget_Q_A_Prob", "prob"), ("forget_Q_A_Prob", "avg_loss"), ("forget_Q_A_ROUGE", "rougeL_recall"),
                        ("forget_truth_ratio", "score"), ("extraction_strength", "score"), ("exact_memorization", "score")):
        yield f"{name}.{field}", _values(ou[name], field), _values(ours_eval[name], field)
    for attack in ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus"):
        for group in ("forget", "holdout"):
            yield f"{attack}.{group}", _values(ou[attack][group], "score"), _values(ours_eval[attack][group], "score")
    logs = {"forget": "eval_log_forget.json", "retain": "eval_log.json", "ra": "eval_real_author_wo_options.json",
            "wf": "eval_real_world_wo_options.json"}
    for prefix, log in logs.items():
        yield f"{prefix}_Q_A_Prob.avg_loss", _values(ou[f"{prefix}_Q_A_Prob"], "avg_loss"), _ours_log(ours, log, "avg_gt_loss")
        yield f"{prefix}_Q_A_PERT_Prob.avg_loss", _values(ou[f"{prefix}_Q_A_PERT_Prob"], "avg_loss"), _ours_log(ours, log, "average_perturb_loss")
        if f"{prefix}_Q_A_PARA_Prob" in ou:
            yield f"{prefix}_Q_A_PARA_Prob.avg_loss", _values(ou[f"{prefix}_Q_A_PARA_Prob"], "avg_loss"), _ours_log(ours, log, "avg_paraphrased_loss")
        if prefix != "forget":
            yield f"{prefix}_Q_A_ROUGE.rougeL_recall", _values(ou[f"{prefix}_Q_A_ROUGE"], "rougeL_recall"), _ours_log(ours, log, "rougeL_recall")


def forget_generations(logs: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for _, v in sorted(logs["forget_Q_A_ROUGE"]["value_by_index"].items(), key=lambda kv: int(kv[0]))]


def tie_indices(ou: dict[str, Any], ours_eval: dict[str, Any]) -> set[int]:
    """Forget questions whose greedy generations differ between the two tools."""
    return {i for i, (a, b) in enumerate(zip(forget_generations(ou), forget_generations(ours_eval)))
            if a["generation"] != b["generation"]}


def generations_agree(ou: dict[str, Any], ours_eval: dict[str, Any], checkpoint: Path, differing: set[int]) -> bool:
    """Identical greedy generations, except where the two diverge at a near tie: at the first token where they
    part, the model's logits for the two tokens lie within 1e-4 (float rounding of differently padded batches
    decides such a tie; open-unlearning batches in dataset order, we by length). `differing`: the forget
    questions whose generations differ (`tie_indices`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unlearn_bench.data.collate import PromptFormat

    theirs, mine = forget_generations(ou), forget_generations(ours_eval)
    print(f"  forget generations identical: {len(theirs) - len(differing)}/{len(theirs)}")
    if not differing:
        return True
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer, ok = AutoTokenizer.from_pretrained(checkpoint), True
    for i in sorted(differing):
        a, b = (tokenizer(x[i]["generation"], add_special_tokens=False)["input_ids"] for x in (theirs, mine))
        common = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        if common == min(len(a), len(b)):
            print(f"    question {i}: one generation is a prefix of the other (a stop decided differently)")
            ok = False
            continue
        ids = PromptFormat("llama2").prompt_ids(mine[i]["input"], tokenizer)  # ours logs the question as "input"
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids + a[:common]])).logits[0, -1]
        margin = abs(float(logits[a[common]] - logits[b[common]]))
        print(f"    question {i}: the two part at generated token {common}, logit margin {margin:.1e}")
        ok &= margin <= 1e-4
    return ok


def agreement(ou_dir: Path, ours: Path, checkpoint: Path) -> bool:
    """Print the largest per-example and aggregate differences; True when all are within tolerance."""
    ou, ours_eval = (json.loads((d / "TOFU_EVAL.json").read_text()) for d in (ou_dir, ours))
    ok = True
    print(f"\nagreement, per example (tolerance {PER_EXAMPLE_TOL:g}):")
    rouge_ties = tie_indices(ou, ours_eval)
    for what, theirs, mine in comparisons(ou, ours_eval, ours):
        if what.endswith("rougeL_recall") and what.startswith("forget"):  # near-tie generations: see below
            theirs, mine = ([v for i, v in enumerate(x) if i not in rouge_ties] for x in (theirs, mine))
        if len(theirs) != len(mine):
            print(f"  {what:<34} {len(theirs)} values in open-unlearning's, {len(mine)} in ours")
            ok = False
            continue
        diff = max(abs(a - b) for a, b in zip(theirs, mine))
        ok &= diff <= PER_EXAMPLE_TOL
        print(f"  {what:<34} n={len(mine):<5} max |diff| {diff:.2e}")
    ok &= generations_agree(ou, ours_eval, checkpoint, rouge_ties)
    print(f"agreement, aggregates (tolerance {AGGREGATE_TOL:g}):")
    for name in sorted(set(ou) & set(ours_eval)):
        theirs, mine = ou[name].get("agg_value"), ours_eval[name].get("agg_value")
        if theirs is None or mine is None:
            continue
        diff = abs(theirs - mine)
        if name == "forget_Q_A_ROUGE" and rouge_ties:  # averages the near-tie generations checked above
            print(f"  {name:<22} open-unlearning {theirs:.6g}  ours {mine:.6g}  |diff| {diff:.1e} (near ties: not checked)")
            continue
        ok &= diff <= AGGREGATE_TOL
        print(f"  {name:<22} open-unlearning {theirs:.6g}  ours {mine:.6g}  |diff| {diff:.1e}")
    return ok


def table(ou: list[dict[str, float]], ours: list[dict[str, float]]) -> None:
    print(f"\n{'phase':<14}{'open-unlearning s':>18}{'ours s':>10}{'ratio':>8}")
    for phase in (*PHASES, "total"):
        mine = statistics.median(t.get(phase, 0.0) for t in ours)
        if ou:
            theirs = statistics.median(t.get(phase, 0.0) for t in ou)
            print(f"{phase:<14}{theirs:>18.1f}{mine:>10.1f}{theirs / mine:>7.1f}x")
        else:
            print(f"{phase:<14}{'-':>18}{mine:>10.1f}{'-':>8}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "tofu")
    ap.add_argument("--work", type=Path, default=Path("/tmp/unlearn-bench-eval-vs-ou"), help="checkpoints and run folders")
    ap.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs of each checkpoint")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="per evaluation (OMP_NUM_THREADS)")
    ap.add_argument("--batch-size", type=int, default=32, help="open-unlearning's eval.tofu.batch_size")
    ap.add_argument("--ours-once", nargs=3, type=Path, metavar=("CHECKPOINT", "OUT", "RETAIN_LOG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ours_once:
        return ours_once(*args.ours_once, args.data_dir, args.batch_size)
    if args.rounds < 1:
        raise SystemExit(f"--rounds={args.rounds}: use at least 1")
    data_dir = args.data_dir.resolve()
    checkpoints = build_checkpoints(args.work, data_dir, args.epochs)
    ou = open_unlearning()
    runs = args.work / "runs"
    retain = runs / "retain"
    if ou is not None:
        cwd = ou_data_folder(args.work, data_dir)
        print("open-unlearning evaluates the retain checkpoint (its TOFU_EVAL.json is both sides' retain log; untimed)", flush=True)
        run_ou(ou, cwd, checkpoints["retain"], retain, None, args.threads)
    else:
        run_ours(checkpoints["retain"], retain, retain / "absent", data_dir, args.threads, args.batch_size)
    retain_log = retain / "TOFU_EVAL.json"
    ou_times: list[dict[str, float]] = []
    our_times: list[dict[str, float]] = []
    for r in range(args.rounds):  # interleaved, alternating which goes first, so drift in machine load is shared
        sides = ["ou", "ours"] if r % 2 == 0 else ["ours", "ou"]
        for side in sides:
            if side == "ou" and ou is not None:
                ou_times.append(run_ou(ou, cwd, checkpoints["target"], runs / f"ou_{r}", retain_log, args.threads))
                print(f"round {r}: open-unlearning {ou_times[-1]['total']:.1f} s", flush=True)
            elif side == "ours":
                our_times.append(run_ours(checkpoints["target"], runs / f"ours_{r}", retain_log, data_dir, args.threads, args.batch_size))
                print(f"round {r}: ours {our_times[-1]['total']:.1f} s", flush=True)
    print(f"\nTOFU forget10, 400 forget questions, {args.threads} thread(s) each, median of {args.rounds} interleaved rounds")
    table(ou_times, our_times)
    last = args.rounds - 1
    if ou is not None and not agreement(runs / f"ou_{last}", runs / f"ours_{last}", checkpoints["target"]):
        raise SystemExit("open-unlearning's and our evaluation disagree beyond the tolerances above")


if __name__ == "__main__":
    main()
