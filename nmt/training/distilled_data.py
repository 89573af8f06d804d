"""Sequence-level knowledge distillation (Kim and Rush 2016): a teacher (one model, or an ensemble
such as a `train.members` run) translates the training source with beam search, and a student is
trained on those translations as its targets.

    DIR/pass-KEY/pass.json          what is translated: the teacher's weights, the search, the data
    DIR/pass-KEY/chunk-00000.arrow  the teacher's translations of train sentences [0, chunk), ...
    DIR/teacher-KEY/                a prepared folder (nmt.data.store): train = source + the teacher's
                                    translation; vocab/, valid and test copied from the original
    DIR/both-KEY/                   the same with the original pairs added (distill.mix=both)

A teacher trained on the student's own vocabularies translates the stored source ids, and its
output ids are the student's targets. A teacher of other vocabularies (a GRU on 3k + 3k pieces
teaching a Transformer on one joint vocabulary, as an Argos package needs) reads the cleaned
source text, and its detokenized translations are encoded with the student's target vocabulary.

KEY hashes the teacher's weights, the search options and the original prepared data, so a changed
teacher file, beam or corpus gets its own pass and never reuses another's translations. Each chunk
is written under a scratch name and renamed, so an interrupted pass continues from its last
chunk; a prepared folder appears whole or not at all (nmt.files.atomic_dir).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from nmt.config.choices import DistillMix, SearchKind
from nmt.config.rules import ConfigError, ckpt_list
from nmt.data.encode import SCHEMA, encode_target, pairs_batch, target_ids
from nmt.data.store import (FORMAT_VERSION, VOCAB_DIR, ArrowSplitWriter, LengthHistogram, PreparedDataError,
                            PreparedMeta, load_prepared, split_table, write_split_index)
from nmt.errors import NmtError
from nmt.files import atomic_dir, atomic_file, output_lock, remove_stale_scratch

PASS_FORMAT = 1  # bump when the chunk layout changes: older passes are not reused
PASS_FILE = "pass.json"
INFO_FILE = "distill.json"


class DistillError(NmtError, ValueError):
    """A teacher that cannot teach this data (other vocabularies), or a damaged pass folder."""


@dataclasses.dataclass
class DistilledData:
    """What `build_distilled_data` made or found: the prepared folder a student trains on."""

    prepared_dir: Path
    key: str
    info: dict
    reused: bool


def teacher_paths(cfg) -> list[str]:
    paths = ckpt_list(cfg.distill.teacher)
    if not paths:
        raise ConfigError("no teacher given. Fix: distill.teacher=RUN_DIR (a train.members run teaches as an "
                          "ensemble), a checkpoint, a model folder, or distill.teacher=[A.pt,B.pt]")
    return paths


def load_teacher(cfg):
    """The teacher as a Translator with the pass's search (distill.beam_size, distill.length_penalty;
    the other limits from the decode group), its weights hashed (`fingerprints`)."""
    import torch

    d = cfg.distill
    from nmt.inference.translator import Translator, search_options

    decode = dataclasses.replace(
        search_options(cfg.decode), kind=SearchKind.beam if d.beam_size > 1 else SearchKind.greedy,
        beam_size=d.beam_size, n_best=1, length_penalty=d.length_penalty)
    cuda = torch.cuda.is_available() and cfg.train.device != "cpu"
    return Translator.from_checkpoint(teacher_paths(cfg), decode, "cuda" if cuda else "cpu", max_params=cfg.max_params,
                                      split_sentences=False, fingerprint=True)


def search_settings(options) -> dict:
    """The search options that decide the teacher's output (what the pass is keyed by)."""
    return {"kind": str(options.kind), "beam_size": options.beam_size, "length_penalty": options.length_penalty,
            "max_len_a": options.max_len_a, "max_len_b": options.max_len_b,
            "max_output_len": options.max_output_len, "no_repeat_ngram": options.no_repeat_ngram}


def pass_key(fingerprints: list[str], search: dict, data_key: str, via_text: bool = False) -> str:
    """via_text: the teacher reads the source text with its own vocabulary (its output ids are its own)."""
    parts = [PASS_FORMAT, fingerprints, search, data_key] + (["via text"] if via_text else [])
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def same_vocabularies(teacher, prepared_dir: Path) -> bool:
    """Whether the teacher was trained with the vocabulary files of the student's prepared data
    (then its ids are the student's; otherwise the pass goes through text)."""
    from nmt.runs.checkpoint import vocab_files, vocab_fingerprint

    return teacher.vocab_fingerprint == vocab_fingerprint(vocab_files(prepared_dir / VOCAB_DIR))


def check_teacher(teacher, teacher_names: list[str], prepared_dir: Path, meta: PreparedMeta) -> None:
    """Refuse a teacher that cannot write the student's targets: one of another language pair,
    or one that writes lowercased text for a student of cased text."""
    names = ",".join(teacher_names)
    langs = (teacher.info.get("languages") or {})
    want = meta.languages
    if langs and (langs.get("src"), langs.get("tgt")) != (want["src"], want["tgt"]):
        raise DistillError(
            f"distill.teacher={names} translates {langs.get('src')}->{langs.get('tgt')}, and the student's prepared "
            f"data {prepared_dir} is {want['src']}->{want['tgt']}. Fix: a teacher of {want['src']}->{want['tgt']}, "
            f"or prepared_dir= the data of the teacher's pair")
    if teacher.preprocess.lowercase and not meta.preprocess.get("lowercase"):
        raise DistillError(
            f"distill.teacher={names} was trained on lowercased text (preprocess.lowercase=true) and writes it, "
            f"and the student's prepared data {prepared_dir} is cased: the student would learn to write lowercase. "
            "Fix: a teacher trained on cased text, or prepare the student's data with preprocess.lowercase=true")


def build_distilled_data(cfg) -> DistilledData:
    """The distilled prepared folder for `cfg` (teacher, search, mix, prepared_dir): reused when it
    is there, else the teacher translates what is left of the training source and the folder is
    assembled."""
    names = teacher_paths(cfg)
    prepared = Path(cfg.prepared_dir)
    data, meta, _ = load_prepared(prepared)
    if "train" not in data:
        raise PreparedDataError(f"{prepared}: no `train` split for the teacher to translate")
    teacher = load_teacher(cfg)
    check_teacher(teacher, names, prepared, meta)
    via_text = not same_vocabularies(teacher, prepared)
    search = search_settings(teacher.options)
    key = pass_key(teacher.fingerprints, search, meta.cache_key, via_text)
    root = Path(cfg.distill.dir)
    mix = DistillMix(cfg.distill.mix)
    out = root / f"{mix}-{key[:12]}"
    pass_dir = root / f"pass-{key[:12]}"
    with output_lock(pass_dir):  # one process at a time translates this pass and assembles from it
        remove_stale_scratch(out)
        info_path = out / INFO_FILE
        if info_path.is_file() and json.loads(info_path.read_text()).get("key") == key:
            print(f"distill: {out} already holds the teacher's translations for this teacher, search and data; "
                  "reusing it", file=sys.stderr)
            return DistilledData(out, key, json.loads(info_path.read_text()), True)
        table = split_table(data["train"])
        record = {"key": key, "teacher": [str(Path(n).resolve()) for n in names], "fingerprints": teacher.fingerprints,
                  "search": search, "prepared_dir": str(prepared.resolve()), "data_key": meta.cache_key,
                  "via_text": via_text}
        if via_text:  # the teacher's own pieces of the cleaned source text
            print(f"distill: the teacher's vocabularies are not the student's ({prepared / VOCAB_DIR}): it reads the "
                  "source text, and its translations are encoded with the student's vocabulary", file=sys.stderr)
            sources = teacher.encode(table.column("src_text").to_pylist())[0]  # cleaned as the teacher's data
        else:
            sources = table.column("src_ids").to_pylist()
        seconds = run_pass(teacher, sources, pass_dir, record, cfg.distill.chunk)
        info = assemble(out, prepared, data, meta, table, pass_dir, mix, record, seconds,
                        teacher.tgt_vocab if via_text else None)
    return DistilledData(out, key, info, False)


def run_pass(teacher, sources: list[list[int]], pass_dir: Path, record: dict, chunk: int) -> float:
    """Translate `sources` chunk by chunk into `pass_dir` (the chunks already there are kept: an
    interrupted pass continues); the seconds this call spent translating."""
    import pyarrow as pa
    from tqdm import tqdm

    pass_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(pass_dir / "*.arrow")
    meta_path = pass_dir / PASS_FILE
    if meta_path.is_file():
        stored = json.loads(meta_path.read_text())
        if stored.get("key") != record["key"]:
            raise DistillError(f"{pass_dir}: holds another pass (key {stored.get('key', '?')[:12]}). Fix: remove "
                               "the folder, or distill.dir= another folder")
        chunk = stored["chunk"]  # the size the pass started with: chunk k covers the same sentences
    else:
        with atomic_file(meta_path) as tmp:
            tmp.write_text(json.dumps({**record, "chunk": chunk, "sentences": len(sources)}, indent=2))
    starts = range(0, len(sources), chunk)
    todo = [k for k, s in enumerate(starts) if not (pass_dir / chunk_name(k)).is_file()]
    done = len(sources) - sum(len(sources[starts[k]:starts[k] + chunk]) for k in todo)
    if done:
        print(f"distill: {pass_dir} holds {done} of {len(sources)} translations from an earlier run; "
              "continuing", file=sys.stderr)
    started = time.time()
    with tqdm(total=len(sources), initial=done, desc="distill: teacher translates train", unit=" sentences",
              file=sys.stderr, dynamic_ncols=True) as bar:
        for k in todo:
            part = sources[starts[k]:starts[k] + chunk]
            hyps = teacher.translate_ids(part)
            batch = pa.record_batch([pa.array([h.tokens for h in hyps], type=pa.list_(pa.int32())),
                                     pa.array([h.score for h in hyps], type=pa.float32())],
                                    names=["tokens", "score"])
            with atomic_file(pass_dir / chunk_name(k)) as tmp:
                with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
                    writer.write_batch(batch)
            bar.update(len(part))
    seconds = time.time() - started
    if todo:
        n = len(sources) - done
        print(f"distill: the teacher translated {n} sentences in {seconds:.0f}s ({n / max(seconds, 1e-9):.1f} "
              f"sentences/s, {record['search']['kind']} {record['search']['beam_size']})", file=sys.stderr)
    return seconds


def chunk_name(k: int) -> str:
    return f"chunk-{k:05d}.arrow"


def read_pass(pass_dir: Path) -> list[list[int]]:
    """The teacher's output pieces (no SOS/EOS) for every train sentence, in corpus order."""
    import pyarrow as pa

    stored = json.loads((pass_dir / PASS_FILE).read_text())
    n_chunks = -(-stored["sentences"] // stored["chunk"])
    tokens: list[list[int]] = []
    for k in range(n_chunks):
        with pa.memory_map(str(pass_dir / chunk_name(k))) as source:
            tokens.extend(pa.ipc.open_file(source).read_all().column("tokens").to_pylist())
    if len(tokens) != stored["sentences"]:
        raise DistillError(f"{pass_dir}: {len(tokens)} translations for {stored['sentences']} sentences. "
                           "Fix: remove the folder and run again")
    return tokens


def student_targets(teacher_tokens: list[list[int]], tgt_vocab, teacher_vocab, max_len: int) -> tuple[list, list]:
    """The teacher's output as the student's stored targets (SOS, ids, EOS; [] where it wrote
    nothing) and texts. teacher_vocab: None when the teacher's ids are the student's; else the
    teacher's target vocabulary, whose detokenized text the student's vocabulary encodes."""
    if teacher_vocab is None:
        return ([target_ids([t], max_len)[0] if t else [] for t in teacher_tokens],
                [tgt_vocab.to_text(t) for t in teacher_tokens])
    texts = [teacher_vocab.to_text(t) for t in teacher_tokens]
    return [ids if text else [] for ids, text in zip(encode_target(tgt_vocab, texts, max_len), texts)], texts


def assemble(out: Path, prepared: Path, data, meta: PreparedMeta, table, pass_dir: Path, mix: DistillMix,
             record: dict, seconds: float, teacher_vocab=None) -> dict:
    """Write the prepared folder `out`: train from the teacher's output (and, mix=both, the original
    pairs not identical to it); vocab/, valid, test and the rest as in `prepared`. teacher_vocab:
    the teacher's target vocabulary when it is not the student's (the output goes through text)."""

    from nmt.data.vocab import load_vocabs

    _, tgt_vocab = load_vocabs(prepared / VOCAB_DIR)
    max_len = meta.preprocess["max_len"]
    targets, texts = student_targets(read_pass(pass_dir), tgt_vocab, teacher_vocab, max_len)
    src_ids = table.column("src_ids").to_pylist()
    src_text = table.column("src_text").to_pylist()
    ref_ids = table.column("tgt_ids").to_pylist()
    ref_text = table.column("tgt_text").to_pylist()
    empty = same = 0
    rows = {"src_ids": [], "tgt_ids": [], "src_text": [], "tgt_text": []}

    def add(s_ids, t_ids, s_text, t_text):
        rows["src_ids"].append(s_ids)
        rows["tgt_ids"].append(t_ids)
        rows["src_text"].append(s_text)
        rows["tgt_text"].append(t_text)

    for s_ids, s_text, t_ids, t_text, r_ids, r_text in zip(src_ids, src_text, targets, texts, ref_ids, ref_text):
        if not t_ids:  # the teacher wrote nothing: the original target stands in
            empty += 1
            add(s_ids, r_ids, s_text, r_text)
            continue
        same += t_ids == r_ids
        add(s_ids, t_ids, s_text, t_text)
        if mix == DistillMix.both and t_ids != r_ids:
            add(s_ids, r_ids, s_text, r_text)
    info = {**record, "mix": str(mix), "train_pairs": len(rows["src_ids"]), "sentences": len(src_ids),
            "teacher_empty": empty, "teacher_equals_reference": same, "pass_seconds": round(seconds, 1)}
    with atomic_dir(out) as tmp:
        shutil.copytree(prepared / VOCAB_DIR, tmp / VOCAB_DIR)
        for split in data:
            if split != "train":
                shutil.copytree(prepared / split, tmp / split)
        lengths = dict(meta.lengths)
        hist = {"src": LengthHistogram(), "tgt": LengthHistogram()}
        writer = ArrowSplitWriter(tmp / "train", SCHEMA)
        step = 10_000
        for i in range(0, len(rows["src_ids"]), step):
            batch = pairs_batch(*(rows[k][i:i + step] for k in ("src_ids", "tgt_ids", "src_text", "tgt_text")))
            writer.write(batch)
            hist["src"].add(batch.column("src_len").to_numpy())
            hist["tgt"].add(batch.column("tgt_len").to_numpy())
        writer.close(f"{record['key'][:16]}-{mix}-train")
        lengths["train"] = {side: h.stats() for side, h in hist.items()}
        write_split_index(tmp, list(data))
        PreparedMeta(
            format_version=FORMAT_VERSION, cache_key=hashlib.sha256(f"{record['key']}:{mix}".encode()).hexdigest(),
            config=meta.config, inputs={**meta.inputs, "distill.teacher": ",".join(record["fingerprints"])},
            counts={**meta.counts, "train": len(rows["src_ids"])}, dropped=meta.dropped,
            train_pairs_read=meta.train_pairs_read, vocab=meta.vocab, special_ids=meta.special_ids, lengths=lengths,
            seconds=round(seconds, 2)).save(tmp)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    if empty > len(src_ids) // 10:
        print(f"distill: note: the teacher wrote nothing for {empty} of {len(src_ids)} sentences (the references "
              "stand in for them): is it trained?", file=sys.stderr)
    print(f"distill: wrote {out}: {info['train_pairs']} training pairs (mix={mix}; the teacher's translation equals "
          f"the reference for {same} of {len(src_ids)}, wrote nothing for {empty})", file=sys.stderr)
    return info
