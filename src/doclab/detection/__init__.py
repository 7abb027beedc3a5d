"""DBNet text detection: backbone, decoder, head, targets, loss, post-processing."""
