"""Figures of the studies, one module per study (``toy``, ``fisher``, ``ensemble``,
``validate``) and a ``style`` module.

Plots compute nothing: every number shown comes from a study's result (or its JSON
file), closed forms from ``jaxunc.information`` and the study configurations.  Each
module has ``FILES`` (file name → figure function) and ``save_figures(result,
folder) -> [paths]``.  matplotlib is imported inside the functions, and figures are
drawn on the Agg canvas without pyplot, so nothing here touches global plotting
state.  The names below are the figure functions of every study, for notebooks.
"""

from jaxunc.plots import ensemble, fisher, style, toy, validate
from jaxunc.plots.ensemble import figure_ensemble_std_vs_ngen
from jaxunc.plots.fisher import figure_fisher_vs_ngen
from jaxunc.plots.toy import (
    figure4_training_samples,
    figure5_sample_means,
    figure6_std_vs_ngen,
    figure7_funnels,
)
from jaxunc.plots.validate import (
    figure_validate_amplification,
    figure_validate_histograms,
    figure_validate_p_values,
)

save_toy_figures = toy.save_figures
save_fisher_figures = fisher.save_figures
save_ensemble_figures = ensemble.save_figures
save_validate_figures = validate.save_figures

__all__ = [
    "ensemble",
    "figure4_training_samples",
    "figure5_sample_means",
    "figure6_std_vs_ngen",
    "figure7_funnels",
    "figure_ensemble_std_vs_ngen",
    "figure_fisher_vs_ngen",
    "figure_validate_amplification",
    "figure_validate_histograms",
    "figure_validate_p_values",
    "fisher",
    "save_ensemble_figures",
    "save_fisher_figures",
    "save_toy_figures",
    "save_validate_figures",
    "style",
    "toy",
    "validate",
]
