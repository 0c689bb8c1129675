"""The model and its training: NAFNet, the tone-curve prior, losses, and BasicSR behind
``basicsr_adapter`` (the only module that imports it)."""
