"""Training cost: step time, MFU, memory per device, GPU-hours, dollars and energy of pre-training
and fine-tuning, from the same specs and roofline as inference (README, Training)."""
