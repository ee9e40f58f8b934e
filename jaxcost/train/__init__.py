"""Training steps: building one for any module (:mod:`.step`) and splitting what it costs
into forward, backward, recompute and optimizer work, model vs hardware FLOPs, MFU and HFU
(:mod:`.cost`)."""
