"""An upload's optional class names file: read within its size bound as UTF-8 text, one class name per line.

Its count is checked against the architecture's head with the checkpoint (app.jobs.uploads.checkpoints), by the
one check every entry point uses (dissect_core.models.class_names.check_class_names).
"""

from __future__ import annotations

from starlette.datastructures import UploadFile

from app.core.errors import AtlasError, TooLarge
from app.jobs.uploads.problems import UploadFieldsError
from dissect_core.errors import DissectError
from dissect_core.models.class_names import CLASS_NAMES_FILE_FORMAT, parse_class_names

#: The largest class names file taken: ImageNet-21k's 21,843 WordNet names fit in about 400 KB.
CLASS_NAMES_MAX_BYTES = 1 << 20


async def receive_class_names(upload: UploadFile) -> tuple[str, ...]:
    """Return the class names of an uploaded class names file; raise TooLarge (HTTP 413) naming the bound when it is
    larger, and UploadFieldsError (422) on the field when it is not UTF-8 text or names no class."""
    data = await upload.read(CLASS_NAMES_MAX_BYTES + 1)
    if len(data) > CLASS_NAMES_MAX_BYTES:
        raise TooLarge(
            f"The class names file is over the limit of {CLASS_NAMES_MAX_BYTES // 1024:,} KB; give "
            f"{CLASS_NAMES_FILE_FORMAT}, and nothing else."
        )
    try:
        return parse_class_names(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        problem: DissectError = AtlasError(
            f"The class names file is not UTF-8 text; save it as {CLASS_NAMES_FILE_FORMAT}."
        )
    except DissectError as error:
        message = str(error)
        problem = AtlasError(message[:1].upper() + message[1:] + ".")
    raise UploadFieldsError([("class_names", problem)])
