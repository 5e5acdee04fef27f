"""The SSD MultiBox loss (paper section 2.2, "Training objective")."""

import keras
import tensorflow as tf


def highest_per_row(values, counts):
    """Marks the `counts[b]` highest entries of each row of `values`, ties to the lower index.

    The same entries as ranking each row with a descending sort and keeping
    ranks below `counts[b]`, but from one `top_k` as deep as the largest count
    (hard negative mining keeps a few hundred of tens of thousands of boxes).

    Args:
        values: float `[B, N]`.
        counts: float `[B]`, entries to keep per row; a fraction keeps the
            rank below it (2.5 keeps 3).

    Returns:
        bool `[B, N]`.
    """
    depth = tf.minimum(tf.cast(tf.math.ceil(tf.reduce_max(counts)), tf.int32), tf.shape(values)[1])
    _, top = tf.math.top_k(values, depth)  # [B, depth], highest first, ties to the lower index
    kept = tf.cast(tf.range(depth)[None, :], tf.float32) < counts[:, None]
    rows = tf.broadcast_to(tf.range(tf.shape(values)[0])[:, None], tf.shape(top))
    return tf.scatter_nd(tf.stack([rows, top], -1), tf.cast(kept, tf.int32), tf.shape(values)) > 0


@keras.saving.register_keras_serializable(package="keras_ssd")
class SSDLoss(keras.losses.Loss):
    """L = (L_conf + alpha * L_loc) / N, N = positives in the whole batch.

    L_conf: softmax cross-entropy over the positives and, per image, the
    `neg_pos_ratio` x (that image's positives) negatives with the highest
    loss (hard negative mining). L_loc: smooth L1 (beta 1) over the positives'
    four offsets. With no positive in the batch the loss is 0 and its gradient
    finite.

    `call` returns the batch value as a scalar, so the result is the paper's L
    whatever `reduction` is set to (Keras reduces a scalar to itself).

    y_true: float `[B, N, 5]`: `[..., :4]` encoded targets, `[..., 4]` class id
        (0 background, k + 1 object class k, -1 ignored: neither positive nor negative).
    y_pred: float `[B, N, 4 + C + 1]`: offsets then class logits.

    Args:
        neg_pos_ratio: hard negatives kept per positive.
        alpha: weight of the localisation term.
    """

    def __init__(self, neg_pos_ratio=3.0, alpha=1.0, name="ssd_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.neg_pos_ratio = neg_pos_ratio
        self.alpha = alpha

    @classmethod
    def from_ssd_config(cls, cfg, **kwargs):
        """The loss an `SSDConfig` asks for (its `neg_pos_ratio`)."""
        return cls(neg_pos_ratio=cfg.neg_pos_ratio, **kwargs)

    def call(self, y_true, y_pred):
        confidence, localisation = self.terms(y_true, y_pred)
        return confidence + self.alpha * localisation

    def terms(self, y_true, y_pred):
        """The two terms of L, each divided by N: `(L_conf / N, L_loc / N)`, float32 scalars.

        `call` returns `L_conf / N + alpha * L_loc / N`. Shapes as for the class.
        """
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        labels = tf.cast(tf.round(y_true[..., 4]), tf.int32)
        positive = labels > 0
        negative = tf.equal(labels, 0)
        num_positive = tf.reduce_sum(tf.cast(positive, tf.float32), axis=1)  # [B]

        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.maximum(labels, 0), logits=y_pred[..., 4:]
        )  # [B, N]
        # Positives and ignored boxes rank below every negative.
        negative_loss = tf.where(negative, tf.stop_gradient(cross_entropy), -1.0)
        num_negative = tf.minimum(
            self.neg_pos_ratio * num_positive, tf.reduce_sum(tf.cast(negative, tf.float32), 1)
        )
        hard_negative = highest_per_row(negative_loss, num_negative)
        conf_mask = tf.cast(positive | (hard_negative & negative), tf.float32)
        conf_loss = tf.reduce_sum(cross_entropy * conf_mask)

        difference = tf.abs(y_pred[..., :4] - y_true[..., :4])
        smooth_l1 = tf.where(difference < 1.0, 0.5 * tf.square(difference), difference - 0.5)
        loc_loss = tf.reduce_sum(tf.reduce_sum(smooth_l1, -1) * tf.cast(positive, tf.float32))

        num_positives = tf.maximum(tf.reduce_sum(num_positive), 1.0)
        return conf_loss / num_positives, loc_loss / num_positives

    def get_config(self):
        config = super().get_config()
        config.update(neg_pos_ratio=self.neg_pos_ratio, alpha=self.alpha)
        return config


SSD_LOSS_TERMS = {"confidence": "conf_loss", "localisation": "loc_loss"}


@keras.saving.register_keras_serializable(package="keras_ssd")
class SSDLossTerm(keras.metrics.Mean):
    """The running mean of one term of `SSDLoss` over an epoch, for the logs.

    `"confidence"` logs L_conf / N as `conf_loss`, `"localisation"` L_loc / N as
    `loc_loss` (unweighted by `alpha`); the batch's N as in `SSDLoss`. Each
    update computes the loss terms again on the same batch (a few sorts over
    `[B, N]`, small beside the network's step).

    Args:
        term: `"confidence"` or `"localisation"`.
        neg_pos_ratio: the loss's hard negatives per positive.
        name: the log key (default `conf_loss` / `loc_loss`).
    """

    def __init__(self, term="confidence", neg_pos_ratio=3.0, name=None, **kwargs):
        if term not in SSD_LOSS_TERMS:
            raise ValueError(f"Unknown SSD loss term {term!r}; expected one of {sorted(SSD_LOSS_TERMS)}")
        super().__init__(name=name or SSD_LOSS_TERMS[term], **kwargs)
        self.term = term
        self.neg_pos_ratio = neg_pos_ratio
        self._loss = SSDLoss(neg_pos_ratio=neg_pos_ratio)

    def update_state(self, y_true, y_pred, sample_weight=None):
        confidence, localisation = self._loss.terms(y_true, y_pred)
        return super().update_state(confidence if self.term == "confidence" else localisation)

    def get_config(self):
        config = super().get_config()
        config.update(term=self.term, neg_pos_ratio=self.neg_pos_ratio)
        return config
