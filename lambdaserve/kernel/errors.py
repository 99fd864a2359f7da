"""One hierarchy of errors; the HTTP and CLI edges map these to status codes and exit codes."""


class LambdaserveError(Exception):
    """Base class of every error lambdaserve raises on purpose."""


class BundleError(LambdaserveError):
    """A model bundle is missing, incomplete, tampered with or unsafe to load."""


class BundleIntegrityError(BundleError):
    """A file's sha256 does not match the manifest, or files are missing or extra."""


class UnsafeArtifactError(BundleError):
    """The bundle holds a file type we never deserialize (pickle, joblib) or an unsafe path."""


class ModelNotLoadedError(LambdaserveError):
    """No verified model is loaded, so no prediction can be made."""


class FeedbackUnavailableError(LambdaserveError):
    """Feedback cannot be stored right now (capture is off, or the sink failed)."""


class InvalidInputError(LambdaserveError):
    """Request or training data does not fit the expected schema."""


class NonFiniteScoreError(InvalidInputError):
    """The model answered NaN or infinity for a row; nothing is answered or captured."""


class CapturePolicyError(LambdaserveError):
    """The capture policy names a field the model does not have: raw values would be captured."""


class CapturePolicyUnavailableError(CapturePolicyError):
    """The policy in force cannot be read: nothing is served before it is first known, and
    nothing is captured while a refresh fails."""


class TrainingError(LambdaserveError):
    """Training cannot go on; the message says why in words a user can act on."""


class ArtifactStoreError(LambdaserveError):
    """The artifact store refused an operation (missing model, version taken, ...)."""


class ModelNotFoundError(ArtifactStoreError):
    """No bundle is stored under that model name or version."""


class VersionExistsError(ArtifactStoreError):
    """Bundles are immutable: that model version is already stored."""


class RegistryError(LambdaserveError):
    """The model registry refused an operation or could not be reached."""


class PromotionRefusedError(LambdaserveError):
    """A candidate did not pass the promotion gate (and --force was not given)."""


class FunctionError(LambdaserveError):
    """The function (Lambda or local) refused an operation."""


class FunctionConflictError(FunctionError):
    """Someone else changed the function concurrently; nothing was published."""


class FunctionVersionInUseError(FunctionConflictError):
    """A function version an alias routes (or one Lambda is busy with) was not deleted."""


class RolloutError(LambdaserveError):
    """A rollout cannot start or continue; the message says why."""


class PruneError(LambdaserveError):
    """Pruning published function versions cannot start (a keep count below 1, for one)."""


class TransientError(LambdaserveError):
    """A call that may succeed when repeated: throttling, a 5xx, a timeout, a lost race.

    Raised by adapters through the subclasses below, so a caller that retries (the rollout
    state machine) can tell it from a refusal, and one that does not sees the usual error type.
    """


class TransientFunctionError(FunctionError, TransientError):
    """A Lambda call failed in a way a retry may not."""


class TransientRolloutError(RolloutError, TransientError):
    """A rollout step could not read or save its state or guards, for now."""


class AwsConfigurationError(LambdaserveError):
    """The AWS backend cannot be used as configured (no region, for example)."""


class ModelSaveError(TrainingError):
    """A model or its data cannot become a bundle (``save_model``, ``import`` from MLflow)."""
