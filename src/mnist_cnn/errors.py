"""The product's own error types: each carries one clear, user-facing sentence.

The CLI turns any `MnistCnnError` into one line on stderr and a non-zero exit;
the web server turns it into a 4xx JSON body. Anything else is a bug.
"""


class MnistCnnError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""

    exit_code = 1


class DataError(MnistCnnError):
    """Dataset files missing, corrupt, truncated or failing verification."""


class DownloadError(DataError):
    """Every mirror failed; the message lists each mirror and why."""

    tried = ""  # "url: reason; url: reason", for a caller's fuller explanation


class ModelFileError(MnistCnnError):
    """A run directory or model file that is missing, damaged or mismatched."""


class ImageError(MnistCnnError):
    """An image that cannot be read, is too large, or is of an unknown format."""


class NoDigitError(ImageError):
    """The image is blank: there is no ink to recognise."""


class UsageError(MnistCnnError):
    """An unknown name or a bad combination of options."""

    exit_code = 2


class ArchitectureError(UsageError, ValueError):
    """A layer stack that cannot be built; the message names the layer and the reason.

    Also a ValueError, as Keras raises for a bad stack, so API users can catch either."""


class TrainingError(MnistCnnError):
    """Training cannot go on (a non-finite loss, a refused resume)."""


class OutputError(MnistCnnError, OSError):
    """A file or folder that cannot be written: a read-only folder, a full disk, a file in
    the way, a name too long, a run folder that is in use or not ours to replace.

    Also an OSError, so code that caught the OSError of a failed write still catches it."""


class ImageTooLargeError(ImageError):
    """An image over a size limit (decoded pixels or file bytes); HTTP 413."""


class UnsupportedImageError(ImageError):
    """Data that is not a PNG, JPEG, WebP, BMP or GIF image (by its bytes); HTTP 415."""
