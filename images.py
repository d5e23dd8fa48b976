"""Photos: check that an upload is a real JPEG, PNG or WebP of sane size, re-encode it without its
metadata as a large image and a thumbnail, and store or remove them in the photo table, where every app
server finds them. Files an older version kept in UPLOAD_FOLDER are moved in by `flask migrate`."""
import hashlib
import io
import os
import secrets
import warnings

import click
from flask import current_app
from PIL import Image, ImageCms, ImageOps

import db

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_SIDE = 10_000
# What decoding and scaling one upload may hold in memory. A 75 KB PNG can claim a billion pixels, so the
# cost is worked out from the header, before anything is decoded.
DECODE_BUDGET = 128 * 1024 * 1024
IMAGE_SIDE, THUMBNAIL_SIDE = 1600, 480
IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}
# Modes Pillow scales as they are; others are converted first. Pillow keeps 1 byte a pixel for one-band
# modes and 4 for the rest, and premultiplies alpha into a second full-size copy while it scales.
SCALABLE_MODES = {"L", "RGB", "RGBX", "CMYK", "YCbCr", "RGBA", "LA"}
PREMULTIPLIED_MODES = {"RGBA", "LA"}


class ImageRefused(ValueError):
    """The upload is not an image we accept; args[0] says why, in the uploader's words."""


def fitted(size, side):
    """size scaled down, keeping its shape, to fit side × side."""
    scale = min(1.0, side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def decoding_cost(image):
    """Bytes that decoding image at its current (perhaps reduced) size and scaling it will hold at once."""
    pixels = image.width * image.height
    stored = 1 if image.mode in ("1", "L", "P") else 4
    if image.mode not in SCALABLE_MODES:
        return pixels * (stored + 8)  # converted to RGBA, then premultiplied
    return pixels * (stored + (4 if image.mode in PREMULTIPLIED_MODES else 0))


def refuse_heavy(image):
    """Refuse an image, from its header alone, that is too big on a side or too costly to decode."""
    width, height = image.size
    if max(width, height) > MAX_SIDE:
        raise ImageRefused(f"That image is {width:,} × {height:,} pixels; photos can be at most "
                           f"{MAX_SIDE:,} pixels on each side.")
    if image.format == "JPEG":
        image.draft("RGB", fitted(image.size, IMAGE_SIDE))  # libjpeg decodes at 1/2, 1/4 or 1/8 scale
    if decoding_cost(image) > DECODE_BUDGET:
        raise ImageRefused(f"That image is {width:,} × {height:,} pixels, too large to process. Save it "
                           "smaller, for example 3,000 pixels on the longest side, and upload it again.")


def plain_rgb(image):
    """image in sRGB with any transparency laid on white, and with no metadata at all."""
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK"):
        try:
            image = ImageCms.profileToProfile(image, io.BytesIO(icc), ImageCms.createProfile("sRGB"),
                                              outputMode="RGBA" if image.mode == "RGBA" else "RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: keep the pixels as they are
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, "white")
        image.paste(rgba, mask=rgba.getchannel("A"))
    else:
        image = image.convert("RGB")
    image.info = {}
    return image


def jpeg(image):
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def reencode(data):
    """Check that data is a real JPEG, PNG or WebP of sane size and cost; return (image, thumbnail) as JPEG
    bytes, scaled down and stripped of comments, EXIF and every other kind of metadata.

    One reduced copy is made (JPEGs are decoded reduced), and the thumbnail is made from it.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused("Images must be 5 MB or smaller.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in IMAGE_FORMATS:
                    raise ImageRefused("Upload a JPEG, PNG or WebP image.")
                refuse_heavy(probe)
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                refuse_heavy(image)
                if image.mode not in SCALABLE_MODES:
                    image = image.convert("RGBA" if image.mode in ("P", "PA", "1") else "RGB")
                image.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
                large = plain_rgb(ImageOps.exif_transpose(image))
        small = large.copy()
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        return jpeg(large), jpeg(small)
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("That image has too many pixels to process.") from None
    except Exception as exc:  # Pillow signals a broken or hostile file with many exception types.
        current_app.logger.info("Refused an image upload: %r", exc)
        raise ImageRefused("That file is not a readable JPEG, PNG or WebP image.") from None


def store(encoded):
    """Keep an encoded (image, thumbnail) pair under new random names, in the caller's transaction;
    return the names."""
    token = secrets.token_urlsafe(16)
    names = [f"{token}{suffix}.jpg" for suffix in ("", "-thumb")]
    for name, data in zip(names, encoded):
        insert(name, "image/jpeg", data)
    return names


def insert(name, content_type, data):
    db.execute("INSERT INTO photo (name, content_type, byte_size, sha256, data) VALUES (%s, %s, %s, %s, %s)",
               (name, content_type, len(data), hashlib.sha256(data).hexdigest(), data))


def remove(*names):
    """Delete stored photos by name, once nothing refers to them."""
    names = [name for name in names if name]
    if names:
        db.execute(f"DELETE FROM photo WHERE name IN ({db.placeholders(names)})", names)


def fetch(name):
    """The stored photo called name (content_type, sha256, data), or None."""
    return db.query("SELECT content_type, sha256, data FROM photo WHERE name = %s", (name,), one=True)


URL_NAME = "/uploads/"


def url(name):
    """The path a stored photo is served at (app.py's uploaded_file route)."""
    return URL_NAME + name


def remove_urls(*urls):
    """Delete stored photos by their URLs, once nothing refers to them."""
    remove(*(found.rsplit(URL_NAME, 1)[1] for found in urls if found and URL_NAME in found))


def import_files():
    """Move into the photo table each file of UPLOAD_FOLDER that a product or producer names and the table
    lacks; return how many. The files stay where they were (`flask migrate` runs this after the SQL files)."""
    folder = current_app.config["UPLOAD_FOLDER"]
    if not os.path.isdir(folder):
        return 0
    urls = db.query("SELECT image_url AS url FROM product UNION SELECT thumbnail_url FROM product"
                    " UNION SELECT image_url FROM producer UNION SELECT thumbnail_url FROM producer")
    names = {row["url"].rsplit(URL_NAME, 1)[1] for row in urls if row["url"] and URL_NAME in row["url"]}
    stored = {row["name"] for row in db.query("SELECT name FROM photo")}
    moved = 0
    for name in sorted(names - stored):
        path = os.path.join(folder, os.path.basename(name))
        if name == os.path.basename(name) and os.path.isfile(path):
            with open(path, "rb") as f:
                insert(name, "image/jpeg", f.read())
            moved += 1
    return moved


def import_photo_files():
    """Move the photos an older version kept as files into the photo table (after migrations)."""
    if "photo" in db.database_tables():
        moved = import_files()
        if moved:
            click.echo(f"Moved {moved} photo files into the database.")
