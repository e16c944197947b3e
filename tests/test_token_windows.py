"""MUSE's training layout: `token_windows` against a hand-made example of baselines/baselines/dataset.py
`DefaultDataset` (.txt path), and `Collator` passing pre-encoded windows through."""
from __future__ import annotations

import copy

import pytest
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from unlearn_bench.data.collate import Collator, Encoded, PromptFormat, token_windows, training_examples
from unlearn_bench.data.records import QA


@pytest.fixture(scope="module")
def char_tokenizer():
    """One token per character, so the expected windows can be written by hand."""
    vocab = {"<s>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4, " ": 5, "\n": 6, "</s>": 7}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_windows_join_documents_lead_with_bos_and_rotate_the_last(char_tokenizer):
    # "ab\n\nc a" = a b \n \n c ␣ a: windows of BOS + 3 tokens; the last, [BOS, a], is filled from the first.
    windows = token_windows(["ab", "c a"], char_tokenizer, 4)
    assert [w.input_ids for w in windows] == [(0, 2, 3, 6), (0, 6, 4, 5), (0, 2, 0, 2)]
    assert all(w.labels == w.input_ids for w in windows)  # every token a target; BOS, first, never is after the shift


def test_full_last_window_is_not_rotated(char_tokenizer):
    # "ab\n\nca": six tokens, two full windows of BOS + 3
    assert [w.input_ids for w in token_windows(["ab", "ca"], char_tokenizer, 4)] == [(0, 2, 3, 6), (0, 6, 4, 2)]


def test_bad_windows_are_errors(char_tokenizer):
    with pytest.raises(ValueError, match="at least 2"):
        token_windows(["ab"], char_tokenizer, 1)
    with pytest.raises(ValueError, match="empty"):
        token_windows([""], char_tokenizer, 4)
    with pytest.raises(ValueError, match="raw text only"):
        training_examples([QA("q?", "a")], char_tokenizer, 4)
    no_bos = copy.deepcopy(char_tokenizer)
    no_bos.bos_token = None
    with pytest.raises(ValueError, match="no BOS token"):
        token_windows(["ab"], no_bos, 4)


def test_training_examples_keep_records_without_a_window(char_tokenizer):
    records = [QA(None, "ab"), QA(None, "c")]
    assert training_examples(records, char_tokenizer, None) == records
    assert training_examples(records, char_tokenizer, 3) == token_windows(["ab", "c"], char_tokenizer, 3)


def test_collator_passes_windows_through(char_tokenizer):
    collate = Collator(char_tokenizer, PromptFormat("plain"), max_length=8)
    batch = collate([Encoded((0, 2, 3), (0, 2, 3)), Encoded((0, 4), (0, 4))])
    assert batch.input_ids.tolist() == [[0, 2, 3], [0, 4, 7]]  # right-padded with EOS (no pad token)
    assert batch.labels.tolist() == [[0, 2, 3], [0, 4, -100]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
