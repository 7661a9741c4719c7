"""Image → faces → crops → probabilities: the pixels trainer and worker both stand on."""
