"""An nmt Transformer as a CTranslate2 model directory, written with CTranslate2's own spec API
(`ctranslate2.specs.TransformerSpec`), so that every program built on CTranslate2 (Argos
Translate, LibreTranslate, faster decoding in Python or C++) runs it:

    DIR/model.bin                 the weights (float32, or quantized with export.quantization)
    DIR/config.json               special tokens, decoder start token, layer norm epsilon
    DIR/shared_vocabulary.json    the pieces, id order (a joint vocabulary), or
    DIR/source_vocabulary.json, DIR/target_vocabulary.json

nmt's Transformer maps without loss (checked by tests/interop/test_ctranslate2.py and measured by
bench/vs_ctranslate2.py): pre-norm layers with a final norm on both sides, ReLU feed-forward, layer
norm epsilon 1e-5, embeddings scaled by sqrt(d_model), nmt's own sinusoid table as explicit
position encodings (CTranslate2's built-in table is ordered [sin | cos] and starts at position 1,
nmt's interleaves sin and cos from position 0), tied embeddings as one array, the source without
BOS/EOS, the decoder started with `<s>`. The RNN family has no CTranslate2 model type.
"""
from __future__ import annotations

from pathlib import Path

import torch

from nmt.errors import NmtError
from nmt.runs.checkpoint import Checkpoint

NO_RNN = ("CTranslate2 runs Transformer models only; it has no RNN, GRU or LSTM encoder-decoder "
          "(CTranslate2 issue 796 is open). Fix: train with model=transformer to export to ctranslate2 or argos, "
          "or export this model as an nmt model folder (export.format=folder)")
# the largest source or target length the exported position table covers
DEFAULT_MAX_POSITIONS = 1024
LAYER_NORM_EPSILON = 1e-5  # torch.nn.LayerNorm's default, which nmt's Transformer uses


class ExportError(NmtError, ValueError):
    """A model or setting the target format cannot express: the message names it and the fix."""


def require_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ExportError("the ctranslate2 package is not installed. Fix: pip install -e '.[interop]' "
                          "(CTranslate2 and Argos Translate)") from None
    return ctranslate2


def check_exportable(ckpt: Checkpoint) -> None:
    """Refuse, naming what it is, a model CTranslate2 cannot run as nmt does."""
    where = ckpt.source or "the checkpoint"
    arch = ckpt.model_config.get("arch")
    if arch != "transformer":
        cell = ckpt.model_config.get("cell")
        raise ExportError(f"{where}: an RNN model (model.arch={arch}, model.cell={cell}). {NO_RNN}")
    dim, heads = int(ckpt.model_config["emb_dim"]), int(ckpt.model_config["heads"])
    if dim % heads:
        raise ExportError(f"{where}: model.emb_dim={dim} is not a multiple of model.heads={heads}")


def transformer_spec(ckpt: Checkpoint, max_positions: int = DEFAULT_MAX_POSITIONS):
    """The checkpoint's Transformer as a validated `ctranslate2.specs.TransformerSpec` with its
    vocabularies registered."""
    require_ctranslate2()
    from ctranslate2.specs import common_spec, transformer_spec

    from nmt.model.transformer import sinusoids

    check_exportable(ckpt)
    cfg = ckpt.model_config
    w = {k: v.detach().float().cpu().numpy() for k, v in ckpt.weights.items()}
    spec = transformer_spec.TransformerSpec.from_config(
        (int(cfg["enc_layers"]), int(cfg["dec_layers"])), int(cfg["heads"]), pre_norm=True,
        activation=common_spec.Activation.RELU)
    positions = sinusoids(torch.arange(max_positions), int(cfg["emb_dim"])).numpy()

    def linear(target, name: str) -> None:
        target.weight, target.bias = w[f"{name}.weight"], w[f"{name}.bias"]

    def norm(target, name: str) -> None:
        target.gamma, target.beta = w[f"{name}.weight"], w[f"{name}.bias"]

    enc, dec = spec.encoder, spec.decoder
    enc.embeddings[0].weight = w["src_embedding.weight"]
    dec.embeddings.weight = w["tgt_embedding.weight"]
    for side in (enc, dec):
        side.scale_embeddings = True
        side.position_encodings.encodings = positions
    for i, layer in enumerate(enc.layer):
        p = f"encoder_layers.{i}"
        norm(layer.self_attention.layer_norm, f"{p}.norm_attn")
        linear(layer.self_attention.linear[0], f"{p}.qkv")  # already fused q|k|v, (out, in) as CTranslate2's
        linear(layer.self_attention.linear[1], f"{p}.out")
        _feed_forward(layer.ffn, p, linear, norm)
    for i, layer in enumerate(dec.layer):
        p = f"decoder_layers.{i}"
        norm(layer.self_attention.layer_norm, f"{p}.norm_self")
        linear(layer.self_attention.linear[0], f"{p}.qkv")
        linear(layer.self_attention.linear[1], f"{p}.self_out")
        norm(layer.attention.layer_norm, f"{p}.norm_cross")
        linear(layer.attention.linear[0], f"{p}.query")
        linear(layer.attention.linear[1], f"{p}.memory_kv")  # fused k|v over the encoder output
        linear(layer.attention.linear[2], f"{p}.cross_out")
        _feed_forward(layer.ffn, p, linear, norm)
    norm(enc.layer_norm, "encoder_norm")
    norm(dec.layer_norm, "decoder_norm")
    linear(dec.projection, "proj")  # tied: the same array as the target embedding, stored once

    src_vocab, tgt_vocab = ckpt.vocabs()
    spec.register_source_vocabulary(src_vocab.pieces(range(src_vocab.size)))
    spec.register_target_vocabulary(tgt_vocab.pieces(range(tgt_vocab.size)))
    from nmt.data.vocab import EOS, SOS, UNK

    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = UNK, SOS, EOS
    spec.config.decoder_start_token = SOS
    spec.config.add_source_bos = spec.config.add_source_eos = False  # nmt's sources carry neither
    spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
    spec.validate()
    return spec


def _feed_forward(ffn, prefix: str, linear, norm) -> None:
    norm(ffn.layer_norm, f"{prefix}.norm_ff")
    linear(ffn.linear_0, f"{prefix}.ff.0")
    linear(ffn.linear_1, f"{prefix}.ff.2")


def write_ctranslate2(ckpt: Checkpoint, directory: Path, quantization: str | None = None,
                      max_positions: int = DEFAULT_MAX_POSITIONS) -> Path:
    """Write the CTranslate2 model directory into `directory`, which must exist and be empty
    (the caller writes into a scratch folder and renames it: nmt.files.atomic_dir)."""
    spec = transformer_spec(ckpt, max_positions)
    spec.optimize(quantization=quantization)
    spec.save(str(directory))
    return Path(directory)


def usage(ckpt: Checkpoint) -> list[str]:
    """The "Use" section of the directory's README: CTranslate2 with the SentencePiece models
    copied beside it (a word or character vocabulary: the caller tokenizes as nmt.data.vocab does)."""
    models = sorted(n for n in ckpt.vocab_files if n.endswith(".model"))
    if not models:
        return ["```python", "import ctranslate2", "", "translator = ctranslate2.Translator(\"THIS_FOLDER\")",
                "out = translator.translate_batch([[\"ein\", \"hund\", \".\"]], beam_size=5)  # tokens as nmt's "
                "vocabulary splits them", "print(out[0].hypotheses[0])", "```"]
    src, tgt = models[0], models[-1]  # spm.src.model and spm.tgt.model, or one joint model
    return ["```python", "import ctranslate2", "import sentencepiece as spm", "",
            "translator = ctranslate2.Translator(\"THIS_FOLDER\")",
            f"src = spm.SentencePieceProcessor(model_file=\"THIS_FOLDER/{src}\")",
            f"tgt = spm.SentencePieceProcessor(model_file=\"THIS_FOLDER/{tgt}\")",
            "out = translator.translate_batch(src.encode([\"Ein Hund rennt.\"], out_type=str), beam_size=5)",
            "print(tgt.decode(out[0].hypotheses[0]))", "```", "",
            "nmt's beam search divides by ((5 + length) / 6) ** a, CTranslate2's `length_penalty` by length ** a."]


def is_ctranslate2_dir(path: Path) -> bool:
    return (Path(path) / "model.bin").is_file() and (Path(path) / "config.json").is_file()


class Ct2Decoder:
    """An exported CTranslate2 directory driven with nmt's own source ids and target vocabulary:
    the search a CTranslate2 user gets, for comparing with nmt's decoder (tests, bench).
    `compute_type`: "float32" or "int8"; `threads`: CTranslate2's intra_threads."""

    def __init__(self, directory: Path, src_vocab, tgt_vocab, compute_type: str = "float32", threads: int = 1):
        ctranslate2 = require_ctranslate2()
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.translator = ctranslate2.Translator(str(directory), device="cpu", compute_type=compute_type,
                                                 inter_threads=1, intra_threads=threads)
        self._ids = {p: i for i, p in enumerate(tgt_vocab.pieces(range(tgt_vocab.size)))}

    def decode(self, sources: list[list[int]], limits: list[int], beam_size: int = 1, length_penalty: float = 0.0,
               batch_size: int = 32) -> list[list[int]]:
        """Source ids -> target ids (no SOS/EOS), in input order. `limits`: each sentence's longest
        output in pieces (nmt's a * len + b, capped); sentences are decoded in input-order
        batches of `batch_size`, each with the batch's largest limit and the output cut to each
        sentence's own (for greedy search, exactly the search with that limit)."""
        out: list[list[int]] = []
        for start in range(0, len(sources), batch_size):
            batch = [self.src_vocab.pieces(s) for s in sources[start:start + batch_size]]
            lims = limits[start:start + batch_size]
            results = self.translator.translate_batch(batch, beam_size=beam_size, length_penalty=length_penalty,
                                                      max_decoding_length=max(lims), max_batch_size=batch_size)
            out += [[self._ids[p] for p in r.hypotheses[0]][:lim] for r, lim in zip(results, lims)]
        return out
