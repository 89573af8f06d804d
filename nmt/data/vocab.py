"""Vocabularies (word, char, SentencePiece) behind one interface; the only source of special ids."""
from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from nmt.config.rules import ConfigError
from nmt.errors import NmtError

# The special tokens and their ids, defined here and nowhere else.
PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = range(4)
SPECIAL_IDS = {"pad": PAD_ID, "unk": UNK_ID, "sos": SOS_ID, "eos": EOS_ID}

VOCAB_INDEX = "vocab.json"


class VocabError(NmtError, ValueError):
    """Vocabulary files that are missing or from another version: the message names the file and the fix."""

# Word tokenizer: a word is a run of letters/digits (with inner - or '), every other
# non-space character is a token of its own. "Ein Mann's Hut." -> Ein Mann's Hut .
_WORD_RE = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}]|'s|n't)")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def tokenize_words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def detokenize_words(tokens: Sequence[str]) -> str:
    """Inverse of tokenize_words up to spacing around punctuation."""
    text = " ".join(tokens)
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", text))


class Vocab(ABC):
    """Maps text to ids and back. Special ids are the module constants for every kind."""

    kind: str
    pad_id, unk_id, sos_id, eos_id = PAD_ID, UNK_ID, SOS_ID, EOS_ID

    @property
    @abstractmethod
    def size(self) -> int: ...

    def __len__(self) -> int:
        return self.size

    @abstractmethod
    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Cleaned sentences -> ids (UNK for unknown units), no SOS/EOS."""

    def sample(self, text: str, alpha: float, nbest_size: int = -1) -> list[int]:
        """Like encode_batch for one sentence, with a random segmentation (subword
        regularization): SentencePiece vocabularies only."""
        raise ConfigError(f"subword sampling needs a SentencePiece vocabulary, this one is {self.kind}. "
                         "Fix: prepare with vocab=spm, or train.subword_sampling.alpha=0")

    @abstractmethod
    def pieces(self, ids: Iterable[int]) -> list[str]:
        """ids -> the units they stand for (for attention plots)."""

    @abstractmethod
    def _detokenize(self, ids: list[int]) -> str: ...

    def content_ids(self, ids: Iterable[int]) -> list[int]:
        """Drop PAD and SOS; stop at the first EOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, SOS_ID):
                out.append(i)
        return out

    def to_text(self, ids: Iterable[int]) -> str:
        """ids -> detokenized text (specials dropped, up to the first EOS)."""
        return self._detokenize(self.content_ids(ids))

    def to_texts(self, batch: Iterable[Iterable[int]]) -> list[str]:
        return [self.to_text(ids) for ids in batch]

    @abstractmethod
    def save(self, path: Path) -> str:
        """Write the vocab under `path` (a folder); return the file name used."""


class TokenVocab(Vocab):
    """A list of units (words or characters) with a dict for the reverse lookup."""

    def __init__(self, kind: str, itos: list[str]):
        if tuple(itos[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a {kind} vocab must start with {SPECIAL_TOKENS}")
        self.kind, self.itos = kind, itos
        self.stoi = {t: i for i, t in enumerate(itos)}

    @classmethod
    def build(cls, kind: str, counter: Counter, min_freq: int = 1, max_size: int = 0) -> "TokenVocab":
        """Most frequent first (ties alphabetical, so the result is deterministic)."""
        units = sorted((u for u, c in counter.items() if c >= min_freq and u not in SPECIAL_TOKENS),
                       key=lambda u: (-counter[u], u))
        if max_size > 0:
            units = units[:max_size]
        return cls(kind, list(SPECIAL_TOKENS) + units)

    @property
    def size(self) -> int:
        return len(self.itos)

    def tokenize(self, text: str) -> list[str]:
        return tokenize_words(text) if self.kind == "word" else list(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        get = self.stoi.get
        return [[get(u, UNK_ID) for u in self.tokenize(t)] for t in texts]

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def _detokenize(self, ids: list[int]) -> str:
        units = self.pieces(ids)
        return detokenize_words(units) if self.kind == "word" else "".join(units)

    def save(self, path: Path, name: str = "") -> str:
        fname = f"{name or self.kind}.vocab.json"
        (Path(path) / fname).write_text(json.dumps(self.itos, ensure_ascii=False), encoding="utf-8")
        return fname

    @classmethod
    def load(cls, kind: str, file: Path) -> "TokenVocab":
        return cls(kind, json.loads(Path(file).read_text(encoding="utf-8")))


class SpmVocab(Vocab):
    """A SentencePiece model trained with the special ids above."""

    kind = "spm"

    def __init__(self, model_file: Path, threads: int = 2):
        import sentencepiece as spm

        self.model_file = Path(model_file)
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.threads = threads
        got = (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id())
        if got != (PAD_ID, UNK_ID, SOS_ID, EOS_ID):
            raise VocabError(f"{model_file}: special ids {got} differ from {(PAD_ID, UNK_ID, SOS_ID, EOS_ID)}")

    @classmethod
    def train(cls, files: list[Path], model_prefix: Path, cfg) -> "SpmVocab":
        import sentencepiece as spm

        spm.set_random_generator_seed(cfg.seed)
        spm.SentencePieceTrainer.train(
            input=[str(f) for f in files],
            model_prefix=str(model_prefix),
            model_type=str(cfg.model_type),
            vocab_size=cfg.vocab_size,
            character_coverage=cfg.character_coverage,
            input_sentence_size=cfg.input_sentence_size,
            shuffle_input_sentence=True,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=SOS_ID, eos_id=EOS_ID,
            pad_piece=PAD, unk_piece=UNK, bos_piece=SOS, eos_piece=EOS,
            hard_vocab_limit=False,
            num_threads=cfg.threads,
            minloglevel=2,
        )
        return cls(Path(f"{model_prefix}.model"), cfg.threads)

    @property
    def size(self) -> int:
        return self.sp.get_piece_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, out_type=int, num_threads=self.threads)

    def sample(self, text: str, alpha: float, nbest_size: int = -1) -> list[int]:
        """BPE: BPE-dropout, each merge skipped with probability `alpha`; unigram: a segmentation
        drawn from the `nbest_size` best (-1: all) with probabilities ** `alpha`. One sentence
        per call, so that `sentencepiece.set_random_generator_seed` before it makes the draw
        repeatable (a list call would also start a thread pool each time)."""
        return self.sp.encode(text, out_type=int, enable_sampling=True, alpha=alpha, nbest_size=nbest_size)

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def _detokenize(self, ids: list[int]) -> str:
        return self.sp.decode(ids)

    def save(self, path: Path, name: str = "") -> str:
        fname = self.model_file.name
        if self.model_file.parent.resolve() != Path(path).resolve():
            (Path(path) / fname).write_bytes(self.model_file.read_bytes())
        return fname


def build_vocabs(cfg, out_dir: Path, train_files: tuple[Path, Path],
                 counters: tuple[Counter, Counter] | None = None) -> tuple[Vocab, Vocab]:
    """Train (spm) or build (word/char, from `counters`) the source and target vocabs from
    the cleaned training split, save them in `out_dir`, and write the index `vocab.json`."""
    kind = cfg.kind.value
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "spm":
        if cfg.joint:
            src = tgt = SpmVocab.train(list(train_files), out_dir / "spm.joint", cfg)
        else:
            src = SpmVocab.train([train_files[0]], out_dir / "spm.src", cfg)
            tgt = SpmVocab.train([train_files[1]], out_dir / "spm.tgt", cfg)
    else:
        assert counters is not None, "word/char vocabs are built from unit counts"
        if cfg.joint:
            src = tgt = TokenVocab.build(kind, counters[0] + counters[1], cfg.min_freq, cfg.max_size)
        else:
            src = TokenVocab.build(kind, counters[0], cfg.min_freq, cfg.max_size)
            tgt = TokenVocab.build(kind, counters[1], cfg.min_freq, cfg.max_size)
    index = {"kind": kind, "joint": bool(cfg.joint), "special_ids": SPECIAL_IDS,
             "src": src.save(out_dir, "joint" if cfg.joint else "src"),
             "tgt": tgt.save(out_dir, "joint" if cfg.joint else "tgt"),
             "src_size": src.size, "tgt_size": tgt.size}
    (out_dir / VOCAB_INDEX).write_text(json.dumps(index, indent=2))
    return src, tgt


def load_vocabs(vocab_dir: Path) -> tuple[Vocab, Vocab]:
    """Rebuild the (source, target) vocabs from the files `build_vocabs` wrote. The index names
    files inside `vocab_dir` only: a path there is refused (VocabError), never followed."""
    from nmt.files import plain_name

    vocab_dir = Path(vocab_dir)
    index_file = vocab_dir / VOCAB_INDEX
    if not index_file.is_file():
        raise VocabError(f"{index_file}: no vocabulary index. Fix: run `python -m nmt.prepare` first")
    try:
        index = json.loads(index_file.read_text())
        kind, joint, names, special = index["kind"], index["joint"], (index["src"], index["tgt"]), index["special_ids"]
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise VocabError(f"{index_file}: not the index nmt.prepare writes ({type(err).__name__}: {err}). "
                         "Fix: prepare the data again (prepare.force=true), or export the model again") from None
    if special != SPECIAL_IDS:
        raise VocabError(f"{index_file}: special ids {special} differ from this version's {SPECIAL_IDS}")
    if kind not in ("spm", "word", "char"):
        raise VocabError(f"{index_file}: unknown vocabulary kind {kind!r}. Fix: prepare the data again")
    for name in names:
        plain_name(name, index_file, "vocabulary file", VocabError)

    def load(fname: str) -> Vocab:
        if kind == "spm":
            return SpmVocab(vocab_dir / fname)
        return TokenVocab.load(kind, vocab_dir / fname)

    src = load(names[0])
    tgt = src if joint else load(names[1])
    return src, tgt
