"""A torchvision ssd300_vgg16 and its converted twin give the same outputs.

Needs torch and torchvision (skipped without them). Randomly initialised
weights (biases and the L2Norm scale randomised too, so every tensor matters),
one 300x300 image through torchvision's own normalisation and through our
preprocessing layer.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import keras_ssd
from keras_ssd.convert import convert_torchvision_ssd300

pytestmark = pytest.mark.full_size

# Largest absolute difference allowed between the head outputs (float32 rounding;
# measured 7e-5 on logits up to 21 in size).
TOLERANCE = 1e-4


def _image():
    """A deterministic RGB uint8 300x300 test image: gradients, blocks and noise."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:300, 0:300]
    image = np.stack([x * 255 / 299, y * 255 / 299, (x + y) * 255 / 598], -1)
    image[40:140, 60:200] = (220, 30, 40)
    image[170:280, 150:260] = (20, 200, 90)
    image += rng.normal(0, 12, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def twins():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    reference = torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None)
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if name.endswith(".bias"):  # initialised to 0: randomise so they are checked
                parameter.uniform_(-0.5, 0.5)
        reference.backbone.scale_weight.uniform_(10.0, 30.0)
    reference.eval()
    state_dict = {key: value.numpy() for key, value in reference.state_dict().items()}
    return reference, convert_torchvision_ssd300(state_dict)


@pytest.fixture(scope="module")
def outputs(twins):
    reference, model = twins
    image = _image()
    x = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0  # torchvision's 0..1 input
    with torch.no_grad():
        images, _ = reference.transform([x])
        features = list(reference.backbone(images.tensors).values())
        head = reference.head(features)
        anchors = reference.anchor_generator(images, features)[0]
        detections = reference([x])[0]
    y_pred = np.asarray(model(image[None]))[0]
    detector = keras_ssd.build_detector(model)
    ours = {key: np.asarray(value)[0] for key, value in detector(image[None]).items()}
    return {
        "theirs_logits": head["cls_logits"][0].numpy(),
        "theirs_regression": head["bbox_regression"][0].numpy(),
        "theirs_anchors": anchors.numpy(),
        "theirs_detections": {key: value.numpy() for key, value in detections.items()},
        "ours_logits": y_pred[:, 4:],
        "ours_offsets": y_pred[:, :4],
        "ours_detections": ours,
    }


def _report(name, ours, theirs):
    diff = np.abs(ours - theirs).max()
    scale = np.abs(theirs).max()
    print(f"{name}: max |diff| {diff:.3g}, max |value| {scale:.3g}, relative {diff / scale:.3g}")
    return diff, scale


def test_default_boxes_match(twins, outputs):
    _, model = twins
    theirs = outputs["theirs_anchors"][:, [1, 0, 3, 2]] / 300.0  # xyxy px -> yxyx
    ours = keras_ssd.default_boxes(model.ssd_config)
    diff, _ = _report("default boxes", ours, theirs)
    assert diff < 1e-6


def test_class_logits_match(outputs):
    ours, theirs = outputs["ours_logits"], outputs["theirs_logits"]
    assert ours.shape == theirs.shape == (8732, 91)
    diff, _ = _report("class logits", ours, theirs)
    assert diff < TOLERANCE


def test_box_regressions_match(outputs):
    ours = outputs["ours_offsets"]
    theirs = outputs["theirs_regression"][:, [1, 0, 3, 2]]  # (dx, dy, dw, dh) -> (ty, tx, th, tw)
    diff, _ = _report("box regressions", ours, theirs)
    assert diff < TOLERANCE


def test_same_detections_after_post_processing(outputs):
    theirs, ours = outputs["theirs_detections"], outputs["ours_detections"]
    count = int(ours["num_detections"])
    scores = ours["detection_scores"][:count]
    print(
        f"detections: ours {count}, torchvision {len(theirs['scores'])}, "
        f"scores {scores.min():.3f}..{scores.max():.3f}, {len(set(theirs['labels']))} classes"
    )
    assert count == len(theirs["scores"]) > 0
    boxes = ours["detection_boxes"][:count] * 300.0  # yxyx normalised -> px
    ours_rows = np.concatenate(
        [ours["detection_classes"][:count, None] + 1.0, ours["detection_scores"][:count, None],
         boxes[:, [1, 0, 3, 2]]], axis=1,
    )  # fmt: skip
    theirs_rows = np.concatenate(
        [theirs["labels"][:, None].astype(np.float64), theirs["scores"][:, None], theirs["boxes"]],
        axis=1,
    )
    # Both lists are sorted by score; rows with near-equal scores may come in
    # either order, so pair each of ours with the one torchvision row of the
    # same class, score and box, and require a one-to-one pairing.
    partner = []
    for row in ours_rows:
        same = np.flatnonzero(
            (theirs_rows[:, 0] == row[0])
            & (np.abs(theirs_rows[:, 1] - row[1]) <= 1e-5)
            & (np.abs(theirs_rows[:, 2:] - row[2:]).max(axis=1) <= 1e-2)
        )
        assert len(same) == 1, (row, theirs_rows[same])
        partner.append(same[0])
    assert sorted(partner) == list(range(count))
    matched = theirs_rows[partner]
    print(
        f"max |score diff| {np.abs(ours_rows[:, 1] - matched[:, 1]).max():.3g}, max |box diff| {np.abs(ours_rows[:, 2:] - matched[:, 2:]).max():.3g} px, rows out of rank order {int(np.sum(np.array(partner) != np.arange(count)))}"
    )


def test_loader_reads_state_dicts_and_training_checkpoints(twins, tmp_path):
    from keras_ssd.convert import load_torchvision_state_dict

    reference, _ = twins
    state_dict = reference.state_dict()
    torch.save(state_dict, tmp_path / "plain.pth")
    torch.save({"model": state_dict, "epoch": 3}, tmp_path / "checkpoint.pth")
    for name in ("plain.pth", "checkpoint.pth"):
        loaded = load_torchvision_state_dict(tmp_path / name)
        assert list(loaded) == list(state_dict)
        for key, value in state_dict.items():
            np.testing.assert_array_equal(loaded[key], value.numpy())
    torch.save(reference, tmp_path / "whole_model.pth")  # pickled module: refused
    with pytest.raises(ValueError, match=r"Save model.state_dict\(\)"):
        load_torchvision_state_dict(tmp_path / "whole_model.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        load_torchvision_state_dict(tmp_path / "list.pth")
