"""Document-type classification: timm classifiers, two-stage fine-tuning, TTA views, ensembles."""
