import io

import numpy as np
from PIL import Image
from skimage import data as skdata

from components.data.pair_checks import alignment_score, dhash, near_duplicates
from components.data.sample_data import degrade


def _decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def test_a_tone_edit_lines_up_and_other_shots_do_not():
    photo = skdata.coffee()
    amateur = _decode(degrade(photo, seed=1))  # exposure, cast, blur, noise, JPEG
    assert alignment_score(amateur, photo) > 0.8
    assert alignment_score(amateur, np.ascontiguousarray(photo[::-1])) < 0.3
    other = np.asarray(Image.fromarray(skdata.astronaut()).resize(photo.shape[1::-1]))
    assert alignment_score(amateur, other) < 0.3
    crop = np.asarray(Image.fromarray(photo[40:300, 60:450]).resize(photo.shape[1::-1]))
    assert alignment_score(amateur, crop) < 0.5


def test_flat_images_are_not_scored():
    assert alignment_score(np.zeros((50, 50, 3), np.uint8), skdata.coffee()[:50, :50]) is None


def test_near_duplicates_survive_reencoding_but_not_other_photos():
    photo = skdata.chelsea()
    buf = io.BytesIO()
    Image.fromarray(photo).resize((226, 150)).save(buf, "JPEG", quality=70)
    hashes = {"a": dhash(photo), "b": dhash(_decode(buf.getvalue())), "c": dhash(skdata.rocket())}
    assert near_duplicates(hashes, max_distance=4) == {"b": "a"}
