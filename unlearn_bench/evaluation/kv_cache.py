"""The KV cache as scoring and greedy decoding drive it (evaluation/lm.py): the name a model's forward takes it by,
the rows of a cache, and full-attention layers whose room for the generated tokens is allocated once."""
from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from transformers import Cache
from transformers.cache_utils import DynamicLayer


def cache_argument(model: torch.nn.Module) -> str | None:
    """The name a model's forward takes its KV cache by: `cache` from transformers 5.25 on (`past_key_values`,
    deprecated there, goes in 5.40), `past_key_values` before; None for a module that takes no cache or no
    `position_ids` (an attack's wrapper module, diagnostics/soft_prompt.py), which then runs whole sequences."""
    parameters = inspect.signature(model.forward).parameters
    if "position_ids" not in parameters:
        return None
    return next((name for name in ("cache", "past_key_values") if name in parameters), None)


def returned_cache(output: Any) -> Cache:
    """The KV cache a forward returned, under either name (see `cache_argument`)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def rows_of(cache: Cache, rows: torch.Tensor) -> Cache:
    """A cache holding only `rows` of `cache`, which stays as it is: `batch_select_indices` rebinds each layer's
    tensors to indexed copies, so it runs on shallow copies of the cache and its layers (transformers >= 4.56
    keeps them in `layers`); a deep copy where a cache has no such list."""
    if hasattr(cache, "layers"):
        out = copy.copy(cache)
        out.layers = [copy.copy(layer) for layer in cache.layers]
    else:
        out = copy.deepcopy(cache)
    out.batch_select_indices(rows)
    return out


class PreallocatedLayer(DynamicLayer):
    """A full-attention cache layer whose keys and values are views of buffers allocated once with room for
    `capacity` positions: each decoding step writes its position in place, where transformers' DynamicLayer
    concatenates, copying the whole cache once per generated token (on TOFU forget10's 400 greedy generations on
    one CPU thread, 128 rows at a time, decoding takes a sixth less time). The views are what DynamicLayer would
    hold, so masks and attention see the same tensors; dropping rows (`batch_select_indices`) copies the kept
    rows' filled positions into new buffers."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        super().__init__()
        self._keys, self.keys = _room(keys, capacity)
        self._values, self.values = _room(values, capacity)
        self.device, self.is_initialized = keys.device, True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.keys.shape[-2], self.keys.shape[-2] + key_states.shape[-2]
        if end > self._keys.shape[-2]:  # past the room allocated: grow by concatenation, as DynamicLayer does
            self._keys = torch.cat([self.keys, key_states], dim=-2)
            self._values = torch.cat([self.values, value_states], dim=-2)
        else:
            self._keys[..., start:end, :], self._values[..., start:end, :] = key_states, value_states
        self.keys, self.values = self._keys[..., :end, :], self._values[..., :end, :]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys, self.keys = _room(self.keys[indices], self._keys.shape[-2])
        self._values, self.values = _room(self.values[indices], self._values.shape[-2])


def _room(states: torch.Tensor, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A buffer for `capacity` positions (at least the states' own) holding `states` first, and its filled view."""
    length = states.shape[-2]
    buffer = states.new_empty((*states.shape[:-2], max(capacity, length), states.shape[-1]))
    buffer[..., :length, :] = states
    return buffer, buffer[..., :length, :]


def preallocated(cache: Cache, capacity: int) -> Cache:
    """`cache` (a prefill's), its full-attention layers (transformers' DynamicLayer, exactly) replaced by
    `PreallocatedLayer`s with room for `capacity` positions; sliding-window and other layers stay as they are."""
    for i, layer in enumerate(getattr(cache, "layers", [])):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys.numel():
            cache.layers[i] = PreallocatedLayer(layer.keys, layer.values, capacity)
    return cache
