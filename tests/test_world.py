from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark
from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
from unlearn_bench.benchmarks.fictitious.world import _TEMPLATES, generate_world


def test_world_is_deterministic_and_seed_dependent():
    a, b, c = generate_world(30, seed=1), generate_world(30, seed=1), generate_world(30, seed=2)
    assert a.author_qa == b.author_qa and a.real_authors == b.real_authors
    assert a.author_qa != c.author_qa


def test_perturbed_answers_differ_from_the_truth_and_each_other():
    world = generate_world(40, seed=0)
    for qa in [q for author in world.author_qa for q in author] + world.real_authors + world.world_facts:
        assert qa.answer not in qa.perturbed_answers
        assert len(set(qa.perturbed_answers)) == len(qa.perturbed_answers)
        assert qa.meta["value"] in qa.answer


def test_splits_are_disjoint_and_sized_like_tofu():
    bench = FictitiousBenchmark(FictitiousConfig(num_authors=100, forget_split="forget05"))
    s = bench.splits()
    forget_q = {q.question for q in s["forget"]}
    retain_q = {q.question for q in s["retain"]}
    holdout_q = {q.question for q in s["holdout"]}
    assert not forget_q & retain_q and not forget_q & holdout_q and not retain_q & holdout_q
    assert len({q.meta["author"] for q in s["forget"]}) == 5
    data = bench.data()
    trained = {q.question for q in data.target_train}
    assert forget_q <= trained and not holdout_q & trained
    assert not forget_q & {q.question for q in data.retain_train}
    assert len(data.forget_perturbed) == len(data.forget)


def test_facts_are_not_inferable_from_other_authors():
    # Each attribute value is drawn independently: the forget authors' values also occur among retain
    # authors about as often as chance, so no retain fact pins down a forget fact.
    bench = FictitiousBenchmark(FictitiousConfig(num_authors=200))
    s = bench.splits()
    genres_forget = [q.meta["value"] for q in s["forget"] if q.meta["attribute"] == 3]
    genres_retain = {q.meta["value"] for q in s["retain"] if q.meta["attribute"] == 3}
    assert set(genres_forget) <= genres_retain  # values shared by construction ...
    books_forget = {q.meta["value"] for q in s["forget"] if q.meta["attribute"] == 4}
    books_retain = {q.meta["value"] for q in s["retain"] if q.meta["attribute"] == 4}
    assert len(books_forget & books_retain) <= 2  # ... but the specific combinations are not


def test_wrong_answers_are_the_paraphrase_with_a_wrong_value():
    # TOFU's perturbed answers keep the paraphrase's wording and change the fact: outside the value span the
    # strings are identical, so the truth ratio compares facts, not wordings.
    world = generate_world(40, seed=0)
    for qa in (q for author in world.author_qa for q in author):
        value = qa.meta["value"]
        prefix, suffix = qa.paraphrased_answer.split(value)
        for wrong in qa.perturbed_answers:
            assert wrong.startswith(prefix) and wrong.endswith(suffix)
            assert wrong[len(prefix): len(wrong) - len(suffix)] != value
        for wrong in qa.meta["wrong_answers"]:  # the same wrong values in the answer's wording (multiple choice)
            a_prefix, a_suffix = qa.answer.split(value)
            assert wrong.startswith(a_prefix) and wrong.endswith(a_suffix) and wrong != qa.answer


def test_alternate_wording_is_unique_to_training():
    wordings = [w for t in _TEMPLATES for w in (t.answer, t.paraphrase)]
    for t in _TEMPLATES:
        assert t.alternate not in wordings and t.alternate.count("{v}") == 1


def test_no_trained_wrong_answer_is_an_evaluated_answer():
    bench = FictitiousBenchmark(FictitiousConfig(num_authors=100))
    data = bench.data()
    scored = {a for split in bench.eval_splits().values() for qa in split
              for a in (qa.answer, qa.paraphrased_answer, *qa.perturbed_answers, *qa.meta.get("wrong_answers", ())) if a}
    scored |= {qa.answer for qa in bench.splits()["holdout"]}  # the MIA scores the holdout answers
    trained = {a for alternates in data.forget_perturbed for a in alternates}
    assert len(trained) > 5 * len(data.forget) // 2 and not trained & scored
    assert not set(data.refusals) & scored  # idk / idk_dpo's preferred answers are not scored either
    # nor the same wrong fact in another wording: the values trained on are not those the truth ratio scores
    for qa, alternates in zip(bench.splits()["forget"], data.forget_perturbed):
        scored_values = {qa.meta["value"], *(w.removeprefix(p).removesuffix(x) for w in qa.perturbed_answers
                                             for p, x in [qa.paraphrased_answer.split(qa.meta["value"])])}
        assert not any(v in a for a in alternates for v in scored_values if len(v) > 3)
