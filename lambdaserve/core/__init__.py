"""Pure domain code: bundles, schemas, predictors, statistics; no cloud, web or pandas imports."""
