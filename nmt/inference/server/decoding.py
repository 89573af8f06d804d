"""What the /translate route does once a request is read: each text routed to the models of its
pair (through the pivot when needed; its language guessed for source=auto), cut into sentences,
decoded through those models' batchers within the request limits, and joined back.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nmt.inference.server.pairs import LanguageGuesser, PairModel, Pairs, UnknownPair
from nmt.inference.translator import Translation, paragraph, search_options


class RequestProblem(ValueError):
    """A request the server refuses: `status` is the HTTP status, the message its error text."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status, self.extra = status, extra


@dataclass
class Routed:
    """A request's texts translated: per text its Translation, the model pairs it went through,
    and for source=auto the language guessed with its confidence in [0, 1]."""

    results: list[Translation]
    routes: list[list[PairModel]]
    detected: list[tuple[str, float]] | None

    def pivot(self, i: int) -> str | None:
        """The language text i went through, or None (a direct model)."""
        return self.routes[i][0].tgt if len(self.routes[i]) > 1 else None


def through_pivot(first: Translation, second: Translation) -> Translation:
    """A sentence translated in two hops: the second hop's text, alternatives and attention; the
    score adds both hops' log-probabilities, the confidence multiplies both."""
    conf = None if first.confidence is None or second.confidence is None else first.confidence * second.confidence
    return Translation(text=second.text, score=first.score + second.score,
                       n_best=[(t, s + first.score) for t, s in second.n_best],
                       source_pieces=second.source_pieces, target_pieces=second.target_pieces,
                       attention=second.attention, confidence=conf)


class Decoding:
    """Requests through the pairs' batchers, within `serve_cfg`'s limits."""

    def __init__(self, pairs: Pairs, serve_cfg, guesser: LanguageGuesser | None = None):
        self.pairs, self.serve_cfg, self.guesser = pairs, serve_cfg, guesser

    # ------------------------------------------------------------------ limits

    def check_texts(self, texts: list[str]) -> None:
        """A request's texts within serve.max_sentences and serve.max_chars, valid Unicode."""
        cfg = self.serve_cfg
        if not texts:
            raise RequestProblem(422, "invalid request: text: an empty list. Send at least one sentence")
        if len(texts) > cfg.max_sentences:
            raise RequestProblem(413, f"{len(texts)} sentences in one request; serve.max_sentences="
                                      f"{cfg.max_sentences}. Send fewer per request")
        for i, t in enumerate(texts):
            if len(t) > cfg.max_chars:
                raise RequestProblem(413, f"text[{i}] has {len(t)} characters; serve.max_chars={cfg.max_chars}")
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as err:  # JSON can carry "\ud800"; no tokenizer can read it
                raise RequestProblem(422, f"invalid request: text[{i}] is not valid Unicode ({err.reason} at "
                                          f"character {err.start}). Send UTF-8 text") from None

    def options(self, beam_size: int | None, n_best: int | None):
        """The search options of a request (beam_size None: the server's), within serve.max_beam_size.
        Each model decodes with its own options otherwise (its length penalty)."""
        defaults = self.pairs.default.translator.options
        beam = beam_size or defaults.beam_size
        if beam > self.serve_cfg.max_beam_size:
            raise RequestProblem(422, f"invalid request: beam_size={beam} exceeds serve.max_beam_size="
                                      f"{self.serve_cfg.max_beam_size}")
        try:
            return search_options(defaults, beam_size=beam, n_best=n_best or 1)
        except ValueError as err:
            raise RequestProblem(422, f"invalid request: {err}") from None

    # ------------------------------------------------------------------ which models

    async def routes(self, detect_texts: list[str], source: str | None, target: str | None
                     ) -> tuple[list[list[PairModel]], list[tuple[str, float]] | None]:
        """Per text, the models that translate it; with source=auto also the guessed language
        (guessed off the event loop). No source and no target: the server's first pair.
        RequestProblem(400) for an unknown pair (with the pairs served)."""
        if source is None and target is None:
            return [[self.pairs.default]] * len(detect_texts), None
        if not source or not target:
            raise RequestProblem(422, "invalid request: give both source and target (or neither: the server's "
                                      f"first pair, {self.pairs.default.key})")
        detected = None
        if source == "auto":
            candidates = self.pairs.sources_for(target)
            if not candidates and not self.pairs.open:
                raise RequestProblem(400, f"no model translates into {target} (this server translates "
                                          f"{', '.join(self.pairs.served)})", pairs=self.pairs.served)
            if self.pairs.open:
                detected = [(self.pairs.default.src, 0.0)] * len(detect_texts)
            elif self.guesser is None:
                detected = [(candidates[0], 0.0)] * len(detect_texts)
            else:
                detected = await asyncio.to_thread(lambda: [self.guesser.guess(t, candidates) for t in detect_texts])
        try:
            routes = [self.pairs.route(d[0] if detected else source, target)
                      for d in (detected or [None] * len(detect_texts))]
        except UnknownPair as err:
            raise RequestProblem(400, str(err), pairs=err.pairs) from None
        return routes, detected

    # ------------------------------------------------------------------ decoding

    async def translate_routed(self, texts: list[str], routes: list[list[PairModel]], options,
                               attention: bool = False, client_gone=None) -> list[Translation]:
        """Texts (a sentence or a paragraph each) along their routes -> one Translation each.
        Each text is cut into sentences by its first model; all sentences of one route are
        decoded together. RequestProblem(413) past serve.max_sentences sentences in all."""
        layouts = [route[0].translator.layouts([text])[0] for text, route in zip(texts, routes)]
        n = sum(len(layout.sentences) for layout in layouts)
        if n > self.serve_cfg.max_sentences:
            raise RequestProblem(413, f"{n} sentences in one request (its texts cut into sentences); "
                                      f"serve.max_sentences={self.serve_cfg.max_sentences}. Send fewer per request")
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, route in enumerate(routes):
            groups.setdefault(tuple(m.key for m in route), []).append(i)
        done: dict[int, list[Translation]] = {}

        async def run(members: list[int]) -> None:
            sentences = [s for i in members for s in layouts[i].sentences]
            found = iter(await self.through(routes[members[0]], sentences, options, attention, client_gone))
            for i in members:
                done[i] = [next(found) for _ in layouts[i].sentences]

        await asyncio.gather(*(run(members) for members in groups.values()))
        return [paragraph(layout, done[i]) for i, layout in enumerate(layouts)]

    async def through(self, route: list[PairModel], sentences: list[str], options, attention: bool,
                      client_gone) -> list[Translation]:
        """Sentences through each model of `route` in turn (the pivot's best output is the next
        model's input; alternatives and attention come from the last)."""
        hops: list[list[Translation]] = []
        inputs = sentences
        for k, model in enumerate(route):
            last = k == len(route) - 1
            opts = options if last else search_options(options, n_best=1)
            hops.append(await self.decode(model, inputs, opts, attention and last, client_gone))
            inputs = [t.text for t in hops[-1]]
        return hops[0] if len(hops) == 1 else [through_pivot(a, b) for a, b in zip(*hops)]

    async def decode(self, model: PairModel, sentences: list[str], options, attention: bool = False,
                     client_gone=None) -> list[Translation]:
        """Sentences -> translations through `model`'s batcher; RequestProblem for untokenizable
        text (422) or decoding work past serve.max_request_work (413)."""
        try:
            sources, _ = model.translator.encode(sentences)
        except (UnicodeError, ValueError) as err:  # whatever a tokenizer refuses is the client's text
            raise RequestProblem(422, f"invalid request: the text could not be tokenized ({err})") from None
        work = sum(map(len, sources)) * options.beam_size
        if work > self.serve_cfg.max_request_work:
            raise RequestProblem(413, f"the request is {sum(map(len, sources))} source pieces at beam size "
                                      f"{options.beam_size}: {work} units of decoding work, over "
                                      f"serve.max_request_work={self.serve_cfg.max_request_work}. Send fewer or "
                                      "shorter sentences per request, or a smaller beam_size")
        return await model.batcher.submit(sources, options, attention, client_gone)
