from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark, FictitiousConfig
from unlearn_bench.benchmarks.fictitious.world import generate_world


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
