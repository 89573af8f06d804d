"""Several language pairs behind one server: which model translates a (source, target), through
English when no model does it directly, and which language a text is in (source=auto).

    nmt.serve serve.models='[outputs/de-en,outputs/en-de,outputs/en-fr]'   # pairs from each model's data config
    nmt.serve serve.models='{de-en: old.pt, en-fr: outputs/en-fr}'         # or named (an old checkpoint)

Each model keeps its own dynamic batcher (and decoding thread), so a busy pair does not hold up
another. A pair with no model of its own is translated through the pivot language when models to
and from it are loaded (de->en then en->fr for de->fr).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nmt.config.rules import ConfigError
from nmt.languages import language_name

PIVOT = "en"


@dataclass
class PairModel:
    """One loaded model: its pair, the name of what was loaded (never a path), its Translator,
    and (once the app starts) its batcher."""

    src: str
    tgt: str
    name: str
    translator: Any
    batcher: Any = None

    @property
    def key(self) -> str:
        return pair_key(self.src, self.tgt)


def pair_key(src: str | None, tgt: str | None) -> str:
    return f"{src}-{tgt}"


class UnknownPair(ValueError):
    """A (source, target) no loaded model and no pivot path translates."""

    def __init__(self, message: str, pairs: list[str]):
        super().__init__(message)
        self.pairs = pairs


class Pairs:
    """The models a server holds, by pair. A single model whose languages are unknown (a
    checkpoint from before nmt recorded them) is served for whatever pair a client names."""

    def __init__(self, models: list[PairModel]):
        if not models:
            raise ConfigError("no model to serve. Fix: ckpt=RUN or serve.models='[RUN_A,RUN_B]'")
        self.models = models
        self.by_pair = {m.key: m for m in models}
        self.default = models[0]
        self.open = len(models) == 1 and not (models[0].src and models[0].tgt)  # languages unknown

    @property
    def served(self) -> list[str]:
        """Every pair translated, direct ones first, then those through the pivot."""
        direct = [m.key for m in self.models]
        return direct + [pair_key(s, t) for s, t in self.pivot_pairs()]

    def pivot_pairs(self) -> list[tuple[str, str]]:
        into = [m.src for m in self.models if m.tgt == PIVOT]
        out = [m.tgt for m in self.models if m.src == PIVOT]
        return [(s, t) for s in into for t in out if s != t and pair_key(s, t) not in self.by_pair]

    def route(self, source: str, target: str) -> list[PairModel]:
        """The models that translate `source` into `target`, in order: one, or two through the pivot."""
        if self.open:
            return [self.default]
        if pair_key(source, target) in self.by_pair:
            return [self.by_pair[pair_key(source, target)]]
        first, second = self.by_pair.get(pair_key(source, PIVOT)), self.by_pair.get(pair_key(PIVOT, target))
        if first and second and source != target:
            return [first, second]
        raise UnknownPair(f"{source} -> {target} is not served (this server translates {', '.join(self.served)})",
                          self.served)

    def sources_for(self, target: str) -> list[str]:
        """The source languages that reach `target` (directly or through the pivot)."""
        return [s for s, t in (k.split("-", 1) for k in self.served) if t == target]

    def languages(self) -> list[dict]:
        """GET /languages in LibreTranslate's shape: each language with the targets it reaches."""
        if self.open:
            return []
        codes: list[str] = []
        for key in self.served:
            for code in key.split("-", 1):
                if code not in codes:
                    codes.append(code)
        reach = {c: [t for s, t in (k.split("-", 1) for k in self.served) if s == c] for c in codes}
        return [{"code": c, "name": language_name(c), "targets": reach[c]} for c in codes]


class LanguageGuesser:
    """source=auto: the language of a text among the languages the server reads, by
    lingua-language-detector (offline n-gram models, maintained; restricted to the languages
    loaded, which makes it both faster and more accurate). Languages lingua does not know are
    never guessed."""

    def __init__(self, codes: list[str]):
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        known = []
        for code in dict.fromkeys(codes):
            try:
                known.append(IsoCode639_1.from_str(code))
            except ValueError:
                continue
        self.detector = (LanguageDetectorBuilder.from_iso_codes_639_1(*known).with_preloaded_language_models().build()
                         if len(known) >= 2 else None)
        self.codes = [c.name.lower() for c in known]

    def guess(self, text: str, candidates: list[str]) -> tuple[str, float]:
        """(language, confidence in [0, 1]) of `text`, chosen among `candidates`; with one
        candidate or no detector, that candidate with the detector's confidence for it (0 without)."""
        if self.detector is None or not text.strip():
            return candidates[0], 0.0
        values = {v.language.iso_code_639_1.name.lower(): v.value
                  for v in self.detector.compute_language_confidence_values(text)}
        best = max(candidates, key=lambda c: values.get(c, -1.0))
        return best, round(values.get(best, 0.0), 4)


def model_specs(cfg) -> list[tuple[str | None, Any]]:
    """(pair named or None, what to load) for each model `cfg` names: serve.models (a list, or a
    mapping from pair to model), else ckpt."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    spec = cfg.serve.models
    if spec is None or (isinstance(spec, (DictConfig, ListConfig, dict, list, str)) and not spec):
        return [(None, cfg.ckpt)]
    if cfg.ckpt:
        raise ConfigError("ckpt= and serve.models= both given. Fix: one model with ckpt=, several with "
                          "serve.models='[A,B]' (or serve.models='{de-en: A, en-fr: B}')")
    plain = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, (DictConfig, ListConfig)) else spec
    if isinstance(plain, str):
        plain = [plain]
    if isinstance(plain, dict):
        return [(str(k), v) for k, v in plain.items()]
    return [(None, v) for v in plain]


def parse_pair(text: str) -> tuple[str, str]:
    src, sep, tgt = text.partition("-")
    if not (sep and src and tgt):
        raise ConfigError(f"serve.models: {text!r} is not a pair. Fix: name it SRC-TGT, e.g. de-en")
    return src, tgt


def load_pairs(cfg, load) -> Pairs:
    """The models `cfg` names, loaded by `load(cfg, what)` (-> a Translator), each with its pair:
    the one named in serve.models, else the languages of its training data. Two models for one
    pair, a named pair that contradicts the model's own, or a model of unknown languages among
    several are refused, naming the paths."""
    specs = model_specs(cfg)
    models: list[PairModel] = []
    for named, what in specs:
        translator = load(cfg, what)
        recorded = translator.info.get("languages") or {}
        name = str(translator.info.get("checkpoint", what))
        src, tgt = recorded.get("src"), recorded.get("tgt")
        if named:
            n_src, n_tgt = parse_pair(named)
            if src and tgt and (src, tgt) != (n_src, n_tgt):
                raise ConfigError(f"serve.models: {what} was trained on {src}->{tgt}, not {named}. Fix: "
                                  f"name it {pair_key(src, tgt)}")
            src, tgt = n_src, n_tgt
            translator.info["languages"] = {"src": src, "tgt": tgt}
        elif not (src and tgt) and len(specs) > 1:
            raise ConfigError(f"serve.models: {what}: its languages are not recorded (a checkpoint from before nmt "
                              "recorded them). Fix: name its pair, serve.models='{de-en: " + str(what) + ", ...}'")
        for other_spec, other in zip(specs, models):
            if other.src == src and other.tgt == tgt and src:
                raise ConfigError(f"serve.models: {other_spec[1]} and {what} both translate {src}->{tgt}. Fix: serve "
                                  "one model per pair (for an ensemble, give its checkpoints as one list entry)")
        models.append(PairModel(src or "", tgt or "", name, translator))
    return Pairs(models)
