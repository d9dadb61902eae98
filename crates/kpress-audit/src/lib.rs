//! Finds, prices and prunes the leftovers of one-off workloads (under construction).
