"""The preallocated KV-cache layer greedy decoding writes into, against transformers' DynamicLayer."""
from __future__ import annotations

import torch
from transformers import Cache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from unlearn_bench.evaluation.kv_cache import PreallocatedLayer, preallocated


def test_preallocated_layer_holds_what_dynamic_layer_holds() -> None:
    """Prefill, one-token steps, a two-token step, rows dropped, then past the room allocated: after each, the
    same keys, values, length and mask sizes as DynamicLayer's concatenations."""
    torch.manual_seed(0)
    prefill = torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4)
    dynamic = DynamicLayer()
    dynamic.update(*prefill)
    ours = PreallocatedLayer(*prefill, capacity=9)
    steps = [1, 1, 2, "drop", 1, 3, 1]  # 5 + 1 + 1 + 2 + 1 = 10 > 9: the last two steps grow the buffers
    for step in steps:
        if step == "drop":
            rows = torch.tensor([0, 2])
            dynamic.batch_select_indices(rows)
            ours.batch_select_indices(rows)
        else:
            new = torch.randn(len(dynamic.keys), 2, step, 4), torch.randn(len(dynamic.keys), 2, step, 4)
            expected = dynamic.update(*new)
            got = ours.update(*new)
            assert all(torch.equal(a, b) for a, b in zip(got, expected))
        assert torch.equal(ours.keys, dynamic.keys) and torch.equal(ours.values, dynamic.values)
        assert ours.get_seq_length() == dynamic.get_seq_length()
        assert ours.get_mask_sizes(1) == dynamic.get_mask_sizes(1)
    assert ours.get_seq_length() == 5 + 1 + 1 + 2 + 1 + 3 + 1


def test_only_full_attention_layers_are_preallocated() -> None:
    keys = torch.randn(2, 2, 4, 8)
    cache = Cache(layers=[DynamicLayer(), DynamicSlidingWindowLayer(sliding_window=3)])
    for layer in cache.layers:
        layer.update(keys, keys)
    out = preallocated(cache, capacity=10)
    assert [type(layer) for layer in out.layers] == [PreallocatedLayer, DynamicSlidingWindowLayer]
    assert torch.equal(out.layers[0].keys, keys) and out.layers[0]._keys.shape[-2] == 10
