"""The recognisers end to end on one corpus: GMM-HMM, hybrid DBLSTM-HMM (Viterbi-trained on
alignments or on hand labels), full-sum hybrid (trained by the transcript HMM's likelihood), CTC BLSTM.

Each ``run_*`` trains through the EpochLoops that ``loops`` makes (``dlgm.training.RunLoops``:
the command layer decides where checkpoints and curves go), decodes dev and test and returns
(metrics, artefacts); the command layer writes them. Metric keys: test_per, dev_per,
test_der and dev_der (FSDD digits), test_frame_accuracy (decoded phone per frame against the reference:
TIMIT's hand labels, or for FSDD the GMM-HMM forced alignment of the test transcripts).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from dlgm.hmm.baum_welch import PhoneHMM, align, em_iteration, gmm_scorer
from dlgm.hmm.batching import length_batches, pad
from dlgm.hmm.decode import decode
from dlgm.speech import ctc
from dlgm.speech.corpus import FSDD_SILENCE, Corpus
from dlgm.speech.hybrid import (occupancy_log_priors, occupancy_shape, phone_occupancy, scaled_likelihood_scorer,
                               state_log_priors)
from dlgm.speech.model import BLSTM
from dlgm.speech.scoring import confusion, error_rate, frame_accuracy
from dlgm.speech.train import SeqData, evaluate, train
from dlgm.training import RunLoops


def _reference_frames(corpus: Corpus, split: str, alignment: list[torch.Tensor] | None, k: int):
    frames = corpus.frame_phones(split)
    if frames is not None:
        return [f.long() for f in frames]
    return [a // k for a in alignment]


def _decode_all(corpus: Corpus, score, log_self, cfg, device, k: int) -> dict:
    """Phone-loop decoding of dev and test (+ digit loop for FSDD): PER, DER, frame phones."""
    out: dict[str, Any] = {}
    graph = corpus.phone_loop(log_self.to(device), k, cfg["lm_scale"], cfg["insertion_penalty"])
    for split in ("dev", "test"):
        units, states = decode(score, graph, corpus.feats(split, device), cfg["decode_batch_size"])
        out[f"{split}_per"] = corpus.per(split, units)
        out[f"{split}_frames"] = [s // k for s in states]
        out[f"{split}_states"] = states
    if corpus.is_digits:
        graph = corpus.digit_loop(log_self.to(device), k, cfg["lm_scale"], cfg["insertion_penalty"])
        for split in ("dev", "test"):
            units, _ = decode(score, graph, corpus.feats(split, device), cfg["decode_batch_size"])
            out[f"{split}_der"] = corpus.der(split, units)
    return out


def _metrics(decoded: dict, reference: list[torch.Tensor]) -> dict:
    m = {"test_per": decoded["test_per"], "dev_per": decoded["dev_per"],
         "test_frame_accuracy": frame_accuracy(reference, decoded["test_frames"])}
    m.update({key: decoded[key] for key in ("dev_der", "test_der") if key in decoded})
    return m


# ---- 1. GMM-HMM ------------------------------------------------------------------------------
def run_gmm_hmm(corpus: Corpus, cfg: Mapping, device: torch.device, loops: RunLoops):
    k = cfg["states_per_phone"]
    model = PhoneHMM(len(corpus.phones), corpus.dim, k, cfg["var_floor"]).to(device)
    train_x, seqs = corpus.feats("train", device), corpus.phone_ids("train")
    model.gmm.flat_start(torch.cat(train_x).double())
    per_mix = cfg["iterations_per_mixture"]
    mixtures = cfg["mixtures"]

    def epoch_fn(epoch: int) -> dict:
        if epoch and epoch % per_mix == 0:
            while model.gmm.components < mixtures[epoch // per_mix]:
                model.gmm.split()
        stats = em_iteration(model, train_x, seqs, cfg["batch_size"])
        return {"loglik_per_frame": stats["loglik_per_frame"], "components": model.gmm.components}

    loops("baum_welch", per_mix * len(mixtures), {"hmm": model}).run(epoch_fn)
    score = gmm_scorer(model)
    alignments = {split: align(score, model.log_self, k, corpus.feats(split, device), corpus.phone_ids(split),
                               cfg["batch_size"]) for split in ("train", "dev", "test")}
    decoded = _decode_all(corpus, score, model.log_self, cfg, device, k)
    reference = _reference_frames(corpus, "test", alignments["test"], k)
    example = {"feats": corpus.feats("test", torch.device("cpu"))[0], "aligned_states": alignments["test"][0],
               "decoded_states": decoded["test_states"][0], "phones": corpus.phones, "states_per_phone": k}
    if corpus.frame_phones("test") is not None:
        example["hand_phones"] = corpus.frame_phones("test")[0].long()
    return _metrics(decoded, reference), {"model": model.state_dict(), "alignments": alignments, "example": example}


# ---- 2. hybrid DBLSTM-HMM --------------------------------------------------------------------
def hand_label_states(frame_phones: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Frame state targets from hand-labelled phone frames: each run of one phone is cut into k
    equal parts, part j labelled with the phone's state j (runs shorter than k end early)."""
    out = []
    for phones in frame_phones:
        phones = phones.long()
        starts = torch.cat([torch.tensor([True]), phones[1:] != phones[:-1]])
        run = torch.cumsum(starts.long(), 0) - 1
        first = torch.nonzero(starts).squeeze(1)
        lengths = torch.diff(torch.cat([first, torch.tensor([len(phones)])]))
        offset = torch.arange(len(phones)) - first[run]
        out.append(phones * k + torch.div(offset * k, lengths[run], rounding_mode="floor"))
    return out


def run_hybrid(corpus: Corpus, cfg: Mapping, device: torch.device, loops: RunLoops, seed: int,
               gmm_state: Mapping, alignments: Mapping[str, list[torch.Tensor]]):
    """cfg['targets']: 'alignments' (the GMM-HMM's, default) or 'hand_labels' (TIMIT's phone labels)."""
    log_self = gmm_state["log_self"].to(device)
    states = log_self.shape[0]
    k = states // len(corpus.phones)  # the GMM-HMM's topology
    train_x, dev_x = corpus.feats("train", device), corpus.feats("dev", device)
    if cfg.get("targets", "alignments") == "hand_labels":
        if corpus.frame_phones("train") is None:
            raise ValueError(f"targets 'hand_labels': corpus {corpus.name} has no hand-labelled frames (frame_phones)")
        targets = {s: [a.to(device) for a in hand_label_states(corpus.frame_phones(s), k)] for s in ("train", "dev")}
    else:
        targets = {s: [a.to(device) for a in alignments[s]] for s in ("train", "dev")}
    model = None
    for round_ in range(cfg["realign_rounds"] + 1):
        torch.manual_seed(seed)
        model = BLSTM(corpus.dim, cfg["hidden"], cfg["layers"], states).to(device)
        stage = "hybrid" if round_ == 0 else f"hybrid_realign{round_}"
        model = train(model, SeqData(train_x, targets["train"]), SeqData(dev_x, targets["dev"]), "ce", cfg,
                      seed=seed, loops=loops, stage=stage)
        priors = state_log_priors(targets["train"], states).to(device)
        score = scaled_likelihood_scorer(model, priors, cfg["acoustic_scale"], cfg["prior_scale"])
        if round_ < cfg["realign_rounds"]:  # realign with the network, then retrain from scratch
            targets = {s: [a.to(device) for a in align(score, log_self, k, x, corpus.phone_ids(s), cfg["decode_batch_size"])]
                       for s, x in (("train", train_x), ("dev", dev_x))}
    decoded = _decode_all(corpus, score, log_self, cfg, device, k)
    reference = _reference_frames(corpus, "test", alignments.get("test"), k)
    metrics = _metrics(decoded, reference)
    test_targets = SeqData(corpus.feats("test", device), [a.to(device) for a in alignments["test"]])
    metrics["test_state_accuracy"] = float(evaluate(model, test_targets, "ce", cfg["decode_batch_size"])["frame_accuracy"])
    conf = confusion(reference, decoded["test_frames"], len(corpus.phones))
    return metrics, {"model": model.state_dict(), "priors": priors.cpu(), "confusion": conf, "phones": corpus.phones,
                     "example_path": decoded["test_states"][0]}


# ---- 3. full-sum hybrid ----------------------------------------------------------------------
def start_from_hybrid(model: BLSTM, cfg: Mapping, hybrid: Mapping[str, Any] | None) -> None:
    """Load the trained hybrid's weights (hybrid['model'], its model state) into the full-sum network
    when cfg['init_from_hybrid']; the hybrid must be given exactly then, and its network must be this one."""
    if bool(cfg["init_from_hybrid"]) != (hybrid is not None):
        raise ValueError(f"rnn_hmm.fullsum.init_from_hybrid is {cfg['init_from_hybrid']} but the trained hybrid "
                         f"was {'given' if hybrid is not None else 'not given'} (--hybrid)")
    if hybrid is None:
        return
    if cfg["init_ce_epochs"] > 0:
        raise ValueError(f"rnn_hmm.fullsum: init_from_hybrid and init_ce_epochs {cfg['init_ce_epochs']} are two "
                         "starts; set init_ce_epochs to 0")
    try:
        model.load_state_dict(hybrid["model"])
    except RuntimeError as err:
        raise ValueError(f"init_from_hybrid: the hybrid's network is not the full-sum's (hidden {cfg['hidden']}, "
                         f"layers {cfg['layers']}, {model.out.out_features} states): {err}") from None


def run_fullsum(corpus: Corpus, cfg: Mapping, device: torch.device, loops: RunLoops, seed: int,
                gmm_state: Mapping, alignments: Mapping[str, list[torch.Tensor]],
                hybrid: Mapping[str, Any] | None = None):
    """The hybrid's BLSTM trained by -log p(x | transcript's HMM) summed over all paths (full-sum).

    The transcript HMM is the chain of its phones' left-to-right states with the GMM-HMM's
    self-loop probabilities, fixed (not learned). From a flat start (a randomly initialised
    network, no alignment) unless cfg['init_ce_epochs'] > 0: then the network first trains that
    many epochs of frame cross-entropy on the GMM-HMM alignments; or, with cfg['init_from_hybrid'],
    from ``hybrid``, the trained hybrid's model.pt (its model state and priors): the start network is
    then decoded as the hybrid decodes it, its metrics recorded as start_<metric>, so that one run
    holds the network before and after the full-sum stage. cfg['loss_prior_scale'] > 0
    divides the posteriors inside the loss by running state priors (dlgm.speech.train.LossPrior),
    the previous epoch's or, with cfg['loss_prior_window'] > 0, a running mean refreshed every update.
    Decoding as the hybrid, with the state priors from the full-sum occupancies of the training set.
    """
    log_self = gmm_state["log_self"].to(device)
    states = log_self.shape[0]
    k = states // len(corpus.phones)
    train_x, dev_x = corpus.feats("train", device), corpus.feats("dev", device)
    torch.manual_seed(seed)
    model = BLSTM(corpus.dim, cfg["hidden"], cfg["layers"], states).to(device)
    start_from_hybrid(model, cfg, hybrid)
    reference = _reference_frames(corpus, "test", alignments.get("test"), k)
    start: dict[str, float] = {}
    if hybrid is not None:
        score = scaled_likelihood_scorer(model, hybrid["priors"].to(device), cfg["acoustic_scale"], cfg["prior_scale"])
        start = {f"start_{key}": value for key, value in
                 _metrics(_decode_all(corpus, score, log_self, cfg, device, k), reference).items()}
    if cfg["init_ce_epochs"] > 0:
        targets = {s: [a.to(device) for a in alignments[s]] for s in ("train", "dev")}
        model = train(model, SeqData(train_x, targets["train"]), SeqData(dev_x, targets["dev"]), "ce",
                      {**cfg, "epochs": cfg["init_ce_epochs"]}, seed=seed, loops=loops, stage="fullsum_init")
    phones = {s: [torch.tensor(p, device=device) for p in corpus.phone_ids(s)] for s in ("train", "dev")}
    model = train(model, SeqData(train_x, phones["train"], log_self, k), SeqData(dev_x, phones["dev"], log_self, k),
                  "fullsum", cfg, seed=seed, loops=loops, stage="fullsum", loss_prior_scale=cfg["loss_prior_scale"],
                  loss_prior_window=cfg["loss_prior_window"])
    priors = occupancy_log_priors(model, train_x, corpus.phone_ids("train"), log_self, k,
                                  cfg["decode_batch_size"]).to(device)
    score = scaled_likelihood_scorer(model, priors, cfg["acoustic_scale"], cfg["prior_scale"])
    decoded = _decode_all(corpus, score, log_self, cfg, device, k)
    metrics = {**_metrics(decoded, reference), **start}
    metrics.update({key: cfg[key] for key in ("init_ce_epochs", "init_from_hybrid", "loss_prior_scale", "loss_prior_window")})
    metrics.update(occupancy_shape(priors, corpus.phone_ids("train"), sum(len(x) for x in train_x), k))
    top_phone = corpus.phones[int(phone_occupancy(priors, k).argmax())]
    return metrics, {"model": model.state_dict(), "priors": priors.cpu(), "example_path": decoded["test_states"][0],
                     "top_phone": top_phone}


# ---- 4. CTC ----------------------------------------------------------------------------------
def _ctc_digit_graph(corpus: Corpus, insertion_penalty: float, device):
    """Digit loop over CTC outputs: digit words and silence as label strings (phone id + 1), plus blanks."""
    names, units = corpus.word_units()
    graph = ctc.ctc_word_loop([[p + 1 for p in unit] for unit in units], blank=0, insertion_penalty=insertion_penalty)
    graph.log_trans, graph.log_init, graph.log_final = (t.to(device) for t in (graph.log_trans, graph.log_init, graph.log_final))
    graph.ids, graph.first, graph.unit_of_state = (t.to(device) for t in (graph.ids, graph.first, graph.unit_of_state))
    return graph, names + ["<blank>"]


def run_ctc(corpus: Corpus, cfg: Mapping, device: torch.device, loops: RunLoops, seed: int):
    labels = {s: [torch.tensor(seq, device=device) + 1 for seq in corpus.phone_ids(s)] for s in ("train", "dev")}
    torch.manual_seed(seed)
    model = BLSTM(corpus.dim, cfg["hidden"], cfg["layers"], len(corpus.phones) + 1).to(device)
    model = train(model, SeqData(corpus.feats("train", device), labels["train"]),
                  SeqData(corpus.feats("dev", device), labels["dev"]), "ctc", cfg,
                  seed=seed, loops=loops, stage="ctc")
    metrics: dict[str, float] = {}
    for split in ("dev", "test"):
        feats = corpus.feats(split, device)
        greedy_out, beam_out = [None] * len(feats), [None] * len(feats)
        with torch.no_grad():
            for idx in length_batches([len(f) for f in feats], cfg["decode_batch_size"]):
                x, lengths = pad([feats[i] for i in idx])
                log_probs = model(x, lengths.cpu()).log_softmax(-1)
                for j, (g, b) in enumerate(zip(ctc.greedy(log_probs, lengths), ctc.beam_decode(log_probs, lengths, cfg["beam"]))):
                    greedy_out[idx[j]] = [p - 1 for p in g]
                    beam_out[idx[j]] = [p - 1 for p in b]
        metrics[f"{split}_per"] = corpus.per(split, beam_out)
        metrics[f"{split}_per_greedy"] = corpus.per(split, greedy_out)
    if corpus.is_digits:
        graph, names = _ctc_digit_graph(corpus, cfg["insertion_penalty"], device)
        words = [n if n != "<blank>" else FSDD_SILENCE for n in names]

        def score(x, lengths):
            return model(x, lengths.cpu()).log_softmax(-1)

        for split in ("dev", "test"):
            units, _ = decode(score, graph, corpus.feats(split, device), cfg["decode_batch_size"])
            hyps = [[words[u] for u in seq if words[u] != FSDD_SILENCE] for seq in units]
            metrics[f"{split}_der"] = error_rate(corpus.splits[split]["words"], hyps)
    with torch.no_grad():  # CTC's best label per frame of the first test utterance (-1 = blank), for the figure
        x = corpus.feats("test", device)[0]
        example_frames = model(x[None], torch.tensor([len(x)])).argmax(-1)[0].cpu() - 1
    return metrics, {"model": model.state_dict(), "example_frames": example_frames}
