"""The model interface is what the models offer: both families are TranslationModels, an ensemble is Searchable."""
from omegaconf import OmegaConf

from conftest import TINY_TRANSFORMER, make_cfg
from nmt.model import build_model
from nmt.model.ensemble import Ensemble
from nmt.model.interface import Searchable, TranslationModel


def test_both_families_offer_the_interface_and_an_ensemble_offers_search_s():
    rnn = build_model(make_cfg("model.emb_dim=16", "model.hidden_dim=16").model, 20, 20, 0)
    transformer = build_model(OmegaConf.merge(make_cfg(*TINY_TRANSFORMER).model), 20, 20, 0)
    for model in (rnn, transformer):
        assert isinstance(model, TranslationModel)
    ensemble = Ensemble([rnn, transformer])
    assert isinstance(ensemble, Searchable) and not isinstance(ensemble, TranslationModel)
