"""Rollouts: plans, state, controller and guard rules (pure), the use cases, the step the rollout
Lambda runs, publishing a model version and the status of a deployed model."""
