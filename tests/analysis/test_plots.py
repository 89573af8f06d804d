"""Figures: attention heatmaps."""
import os

from conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}




def test_attention_heatmap_has_a_colour_bar_and_the_score_in_its_title():
    import numpy as np

    from nmt.analysis.plots import attention_figure

    fig = attention_figure(np.full((3, 2), 0.5), ["ein", "hund"], ["a", "dog", "</s>"], "a dog\nlog-probability -0.42")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "attention weight"  # the image and its colour bar
    assert "-0.42" in fig.axes[0].get_title()
