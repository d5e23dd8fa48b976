"""Photos: check that an upload is a real JPEG, PNG or WebP of sane size, re-encode it without its
metadata as a large image and a thumbnail, and store or remove the files in UPLOAD_FOLDER."""
import io
import os
import secrets
import warnings

from flask import current_app
from PIL import Image, ImageOps

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_SIDE, THUMBNAIL_SIDE = 1600, 480
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}


class ImageRefused(ValueError):
    """The upload is not an image we accept; args[0] says why, in the uploader's words."""


def jpeg_bytes(image, side):
    """The image scaled to fit side×side and saved as a JPEG with no metadata."""
    copy = image.copy()
    copy.thumbnail((side, side))
    if copy.mode in ("RGBA", "LA", "P", "PA"):
        rgba = copy.convert("RGBA")
        copy = Image.new("RGB", rgba.size, "white")
        copy.paste(rgba, mask=rgba.getchannel("A"))
    else:
        copy = copy.convert("RGB")
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def reencode(data):
    """Check that data is a real JPEG, PNG or WebP of sane size; return (image, thumbnail) as JPEG bytes."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused("Images must be 5 MB or smaller.")
    too_many_pixels = "That image has too many pixels; keep it under 40 megapixels."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in IMAGE_FORMATS:
                    raise ImageRefused("Upload a JPEG, PNG or WebP image.")
                if probe.width * probe.height > MAX_IMAGE_PIXELS:
                    raise ImageRefused(too_many_pixels)
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)
                return jpeg_bytes(upright, IMAGE_SIDE), jpeg_bytes(upright, THUMBNAIL_SIDE)
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(too_many_pixels) from None
    except Exception as exc:  # Pillow signals a broken or hostile file with many exception types.
        current_app.logger.info("Refused an image upload: %r", exc)
        raise ImageRefused("That file is not a readable JPEG, PNG or WebP image.") from None


def store(encoded):
    """Write an encoded (image, thumbnail) pair under new random names; return the names."""
    folder = current_app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    token = secrets.token_urlsafe(16)
    names = []
    for suffix, data in zip(("", "-thumb"), encoded):
        name = f"{token}{suffix}.jpg"
        with open(os.path.join(folder, name), "xb") as f:
            f.write(data)
        names.append(name)
    return names


def remove(*names):
    """Delete stored files by name, once nothing refers to them."""
    for name in names:
        if name:
            try:
                os.remove(os.path.join(current_app.config["UPLOAD_FOLDER"], os.path.basename(name)))
            except FileNotFoundError:
                pass
