"""Which AWS scikit-learn framework image the training job runs, per region, and the ECR
repository ARN the job's role may pull it from."""

from __future__ import annotations

from infra.config import StageConfig

#: The registry account of AWS's scikit-learn framework images per commercial region (the same for
#: every image version: the SageMaker Python SDK's ``image_uri_config/sklearn.json``). Other
#: regions and partitions: set ``training_image_uri``.
SKLEARN_IMAGE_ACCOUNTS = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}
#: The Python 3.12 build of the 1.4-2 image (Ubuntu 24.04). The job's pins (scikit-learn 1.9,
#: numpy 2.5) need Python >= 3.11, so the older 1.2-1/1.4-2 tags (Python 3.9/3.10) cannot run
#: it. Script mode pip-installs our ``requirements.txt`` over the image's scikit-learn 1.4.2, so
#: the job trains with exactly the versions the bundle records and serving loads.
#: tests/integration/test_training_image.py runs the job the way this image does.
SKLEARN_IMAGE_TAG = "sagemaker-scikit-learn:1.4-2-py312-cpu-py3"


def training_image(config: StageConfig) -> str:
    if config.training_image_uri:
        return config.training_image_uri
    account = SKLEARN_IMAGE_ACCOUNTS.get(config.region)
    if account is None:
        raise ValueError(f"no scikit-learn image known for {config.region}; set training_image_uri")
    return f"{account}.dkr.ecr.{config.region}.amazonaws.com/{SKLEARN_IMAGE_TAG}"


def image_repository_arn(image_uri: str) -> str:
    """``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG`` → the repository's ARN."""
    registry, _, repository = image_uri.partition("/")
    account, _, rest = registry.partition(".dkr.ecr.")
    region = rest.split(".")[0]
    return f"arn:aws:ecr:{region}:{account}:repository/{repository.split(':')[0].split('@')[0]}"
