"""Reproduction targets (the paper's tables on the hardware at hand) and CI's accuracy
regression check; importable as `rubric_arm.reproduce`."""
