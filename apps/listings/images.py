"""Listing icons and screenshots: uploaded bytes are never served as sent.

Each upload is checked before it is decoded (byte size; format sniffed from the content, PNG,
JPEG or WebP only — SVG, GIF and anything else refused; pixel count from the header, so a
decompression bomb is refused before its pixels are allocated), decoded fully, turned upright
by its EXIF orientation, resized to fit the kind's maximum size, and re-encoded as WebP without
any metadata (EXIF, ICC, XMP, text chunks are dropped). The re-encoded bytes are stored by their
SHA-256 in ``STORAGES["listing_media"]`` and served by ``storefront.media`` with immutable caching.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from PIL import Image, ImageOps, UnidentifiedImageError

from apps.core.errors import ValidationFailed

FORMATS = ("PNG", "JPEG", "WEBP")
CONTENT_TYPE = "image/webp"
EXTENSION = "webp"


@dataclass(frozen=True)
class Limits:
    max_size: tuple[int, int]  # fitted within, aspect ratio kept
    min_size: tuple[int, int]


KINDS = {
    "icon": Limits(max_size=(256, 256), min_size=(64, 64)),
    "screenshot": Limits(max_size=(1600, 1000), min_size=(320, 200)),
}


def max_bytes() -> int:
    return getattr(settings, "PLAZA_LISTING_IMAGE_MAX_BYTES", 5 * 1024 * 1024)


def max_pixels() -> int:
    return getattr(settings, "PLAZA_LISTING_IMAGE_MAX_PIXELS", 25_000_000)


@dataclass(frozen=True)
class ProcessedImage:
    data: bytes
    sha256: str
    width: int
    height: int


def _refuse(message: str, code: str = "image_invalid") -> ValidationFailed:
    return ValidationFailed(message, code=code, param="file")


def process_image(data: bytes, kind: str) -> ProcessedImage:
    """The cleaned WebP of an uploaded image, or ValidationFailed (param ``file``) saying why not."""
    limits = KINDS[kind]
    if not data:
        raise _refuse("The file is empty.")
    if len(data) > max_bytes():
        raise _refuse(f"The image is over {max_bytes() // (1024 * 1024)} MiB.", code="image_too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # ``formats`` limits the decoders tried: nothing but the allowlist is ever parsed.
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            if image.format not in FORMATS:
                raise _refuse("Upload a PNG, JPEG or WebP image.", code="image_format")
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels():
                raise _refuse(
                    f"The image is {width}×{height} pixels; at most {max_pixels():,} pixels are accepted.",
                    code="image_too_large",
                )
            image.seek(0)  # an animation keeps its first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            image = _normalised(image)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse("The image expands to too many pixels.", code="image_too_large") from None
    except UnidentifiedImageError:
        raise _refuse(
            "Upload a PNG, JPEG or WebP image (SVG and other formats are not accepted).", code="image_format"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, MemoryError, ZeroDivisionError):
        raise _refuse("The image could not be read: it is damaged or truncated.") from None
    min_w, min_h = limits.min_size
    if image.width < min_w or image.height < min_h:
        raise _refuse(f"A {kind} must be at least {min_w}×{min_h} pixels.", code="image_too_small")
    image.thumbnail(limits.max_size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # A fresh image carries no metadata; save without exif/icc so none is written.
    image.save(out, format="WEBP", quality=85, method=4)
    encoded = out.getvalue()
    return ProcessedImage(encoded, hashlib.sha256(encoded).hexdigest(), image.width, image.height)


def _normalised(image: Image.Image) -> Image.Image:
    """A copy holding only pixels (RGB, or RGBA when the image has transparency)."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    converted = image.convert("RGBA" if has_alpha else "RGB")
    clean = Image.new(converted.mode, converted.size)
    clean.paste(converted)
    return clean


# --- storage ---------------------------------------------------------------------------------------
def media_name(sha256: str) -> str:
    return f"listing-media/{sha256[:2]}/{sha256}.{EXTENSION}"


def store_image(image: ProcessedImage) -> None:
    """Store the bytes under their digest, once."""
    storage, name = storages["listing_media"], media_name(image.sha256)
    if not storage.exists(name):
        saved = storage.save(name, ContentFile(image.data))
        if saved != name:  # a concurrent upload of the same bytes won the name
            storage.delete(saved)


def open_image(sha256: str):
    return storages["listing_media"].open(media_name(sha256), "rb")
