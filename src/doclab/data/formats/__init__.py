"""Readers of the annotation formats: UFO JSON, ICDAR/SROIE txt, CORD, FUNSD, labelme, PPOCRLabel (detection;
`registry.READERS`), label CSV and ImageFolder (classification), and `doclab import` (importer)."""
