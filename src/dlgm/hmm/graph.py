"""HMM topologies built from phone models.

Every phone (silence included) is a ``states_per_phone``-state left-to-right model; emission
state ``e = phone * K + k``. ``log_self[e]`` is the self-loop log-probability of emission state e;
the only other way out of a state is to the next one (or, from a phone's last state, to the
next phone / out of the utterance).

* ``linear_graph``: the chain of one transcript's phones (embedded training, forced alignment),
  batched over utterances as dense [B, L, L] transition matrices with padding states at -inf.
* ``loop_graph``: a loop over units (a unit is a phone sequence: one phone for phone recognition,
  a word's pronunciation for the digit grammar) with a unit bigram, a language-model scale and an
  insertion penalty, used for Viterbi decoding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

NEG_INF = float("-inf")


def phone_states(phones: list[int], states_per_phone: int) -> list[int]:
    return [p * states_per_phone + k for p in phones for k in range(states_per_phone)]


def _log_exit(log_self: torch.Tensor) -> torch.Tensor:
    return torch.log1p(-log_self.exp().clamp(max=1 - 1e-6))


@dataclass
class LinearGraph:
    ids: torch.Tensor  # [B, L] emission state of each graph state (0 for padding)
    valid: torch.Tensor  # [B, L] bool
    log_trans: torch.Tensor  # [B, L, L]
    log_init: torch.Tensor  # [B, L]
    log_final: torch.Tensor  # [B, L]
    stay: torch.Tensor  # [B, L] log self-loop probability of each chain state
    leave: torch.Tensor  # [B, L] log probability of moving on (from the last state: of exiting)

    @property
    def states(self) -> torch.Tensor:
        return self.valid.sum(1)

    def emissions(self, state_ll: torch.Tensor) -> torch.Tensor:
        """[B, T, E] emission-state log-likelihoods -> [B, T, L] graph-state log-likelihoods."""
        index = self.ids.unsqueeze(1).expand(-1, state_ll.shape[1], -1)
        out = state_ll.gather(2, index)
        return out.masked_fill(~self.valid.unsqueeze(1), NEG_INF)

    def to_emission_space(self, gamma: torch.Tensor, states: int) -> torch.Tensor:
        """Graph-state posteriors [B, T, L] -> emission-state posteriors [B, T, E]."""
        out = gamma.new_zeros(gamma.shape[0], gamma.shape[1], states)
        index = self.ids.unsqueeze(1).expand(-1, gamma.shape[1], -1)
        return out.scatter_add_(2, index, gamma * self.valid.unsqueeze(1))


def linear_graph(sequences: list[list[int]], log_self: torch.Tensor, states_per_phone: int) -> LinearGraph:
    chains = [phone_states(seq, states_per_phone) for seq in sequences]
    batch, width = len(chains), max(len(c) for c in chains)
    device, dtype = log_self.device, log_self.dtype
    ids = torch.zeros(batch, width, dtype=torch.long)
    valid = torch.zeros(batch, width, dtype=torch.bool)
    for b, chain in enumerate(chains):
        ids[b, : len(chain)] = torch.tensor(chain)
        valid[b, : len(chain)] = True
    ids, valid = ids.to(device), valid.to(device)
    stay = log_self[ids]
    leave = _log_exit(log_self)[ids]
    eye = torch.eye(width, dtype=torch.bool, device=device)
    sup = torch.diag(torch.ones(width - 1, dtype=torch.bool, device=device), 1)
    log_trans = torch.full((batch, width, width), NEG_INF, dtype=dtype, device=device)
    log_trans = torch.where(eye & valid.unsqueeze(2), stay.unsqueeze(2), log_trans)
    next_ok = sup & valid.unsqueeze(1) & valid.unsqueeze(2)
    log_trans = torch.where(next_ok, leave.unsqueeze(2), log_trans)
    lengths = valid.sum(1)
    log_init = torch.full((batch, width), NEG_INF, dtype=dtype, device=device)
    log_init[:, 0] = 0.0
    last = torch.arange(width, device=device).unsqueeze(0) == (lengths - 1).unsqueeze(1)
    log_final = torch.where(last, leave, torch.full_like(leave, NEG_INF))
    return LinearGraph(ids, valid, log_trans, log_init, log_final, stay, leave)


@dataclass
class LoopGraph:
    ids: torch.Tensor  # [S] emission state of each graph state
    log_trans: torch.Tensor  # [S, S]
    log_init: torch.Tensor  # [S]
    log_final: torch.Tensor  # [S]
    first: torch.Tensor  # [U] graph state where each unit starts
    unit_of_state: torch.Tensor  # [S]

    def emissions(self, state_ll: torch.Tensor) -> torch.Tensor:
        return state_ll[..., self.ids]

    def units(self, path: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Unit sequence of each Viterbi path: a unit is counted where its first state is entered."""
        is_first = torch.zeros(self.ids.shape[0], dtype=torch.bool, device=path.device)
        is_first[self.first] = True
        prev = torch.cat([torch.full_like(path[:, :1], -1), path[:, :-1]], dim=1)
        inside = torch.arange(path.shape[1], device=path.device).unsqueeze(0) < lengths.unsqueeze(1)
        entry = is_first[path] & (prev != path) & inside
        unit = self.unit_of_state[path]
        entry, unit = entry.cpu(), unit.cpu()
        return [unit[b][entry[b]].tolist() for b in range(path.shape[0])]


def bigram(sequences: list[list[int]], units: int, add: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Add-``add`` smoothed unit bigram: log P(first unit), log P(v | u), log P(end | u)."""
    counts = torch.full((units + 1, units + 1), add, dtype=torch.float64)  # row units = start, col units = end
    for seq in sequences:
        prev = units
        for u in seq:
            counts[prev, u] += 1
            prev = u
        counts[prev, units] += 1
    counts[units, units] = 0.0  # start -> end (empty utterance) is not allowed
    logp = (counts / counts.sum(1, keepdim=True)).log()
    return logp[units, :units], logp[:units, :units], logp[:units, units]


def loop_graph(
    units: list[list[int]],
    log_self: torch.Tensor,
    states_per_phone: int,
    log_start: torch.Tensor,
    log_bigram: torch.Tensor,
    log_end: torch.Tensor,
    lm_scale: float = 1.0,
    insertion_penalty: float = 0.0,
) -> LoopGraph:
    chains = [phone_states(u, states_per_phone) for u in units]
    ids = torch.tensor([e for c in chains for e in c], dtype=torch.long, device=log_self.device)
    sizes = torch.tensor([len(c) for c in chains])
    first = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
    last = first + sizes - 1
    states = int(sizes.sum())
    dtype = log_self.dtype
    stay, leave = log_self[ids].cpu(), _log_exit(log_self)[ids].cpu()
    log_trans = torch.full((states, states), NEG_INF, dtype=dtype)
    idx = torch.arange(states)
    log_trans[idx, idx] = stay
    inner = torch.ones(states, dtype=torch.bool)
    inner[last] = False
    log_trans[idx[inner], idx[inner] + 1] = leave[inner]
    word = (lm_scale * log_bigram + insertion_penalty).to(dtype)
    log_trans[last.unsqueeze(1), first.unsqueeze(0)] = leave[last].unsqueeze(1) + word
    log_init = torch.full((states,), NEG_INF, dtype=dtype)
    log_init[first] = (lm_scale * log_start + insertion_penalty).to(dtype)
    log_final = torch.full((states,), NEG_INF, dtype=dtype)
    log_final[last] = leave[last] + (lm_scale * log_end).to(dtype)
    unit_of_state = torch.repeat_interleave(torch.arange(len(units)), sizes)
    device = log_self.device
    return LoopGraph(ids, log_trans.to(device), log_init.to(device), log_final.to(device), first.to(device), unit_of_state.to(device))
