"""Process plumbing: devices and precision, accelerate launch, worker lifetimes, logging."""
