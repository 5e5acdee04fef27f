"""A stride-1 "same" convolution whose filter gradient is one matrix product per kernel tap.

The gradient of a convolution's kernel at tap (i, j) is the product of the
layer's input, shifted by that tap, with the output gradient, summed over the
batch and every position:

    dW[i, j] = sum_{b, h, w} x_pad[b, h + i*d, w + j*d, :]^T dy[b, h, w, :]

With the input stored position-major (`[H, W', B, C]`, padded to the width
`W' = W + 2p`) and the output gradient padded to that width with zeros, each
tap's shifted input is a contiguous run of rows of one buffer: a slice along
the first axis, which TensorFlow hands to the matrix product without a copy.
The k*k products are the whole filter gradient; the zero columns of the padded
output gradient cancel the rows that wrap from one image row to the next.
"""

import tensorflow as tf

# Name scope of the ops of `conv2d_tap_gradient`'s gradient.
GRADIENT_SCOPE = "tap_gradient"


def tap_filter_gradient(inputs, output_gradient, kernel_size, dilation=1):
    """Filter gradient of a stride-1 "same" convolution, one matmul per tap.

    Args:
        inputs: `[B, H, W, Cin]` input of the convolution (H, W static).
        output_gradient: `[B, H, W, Cout]` gradient of its output, same dtype.
        kernel_size: k, odd (a square k x k kernel).
        dilation: the kernel's dilation d (both axes).

    Returns:
        `[k, k, Cin, Cout]` gradient of the kernel, in the inputs' dtype.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size!r}")
    _, height, width, in_channels = inputs.shape
    out_channels = output_gradient.shape[-1]
    batch = tf.shape(inputs)[0]
    pad = dilation * (kernel_size - 1) // 2
    padded_width = width + 2 * pad
    # [H + 2p + 1, W', B, Cin]: the extra bottom row holds the last tap's wrap-around.
    rows_in = tf.transpose(inputs, [1, 2, 0, 3])
    rows_in = tf.reshape(tf.pad(rows_in, [[pad, pad + 1], [pad, pad], [0, 0], [0, 0]]), [-1, in_channels])
    # [H, W', B, Cout], zero past column W.
    rows_out = tf.transpose(output_gradient, [1, 2, 0, 3])
    rows_out = tf.reshape(tf.pad(rows_out, [[0, 0], [0, 2 * pad], [0, 0], [0, 0]]), [-1, out_channels])
    taps = []
    for i in range(kernel_size):
        # Output rows whose input row for this tap lies inside the image.
        first, stop = max(0, pad - i * dilation), min(height, height + pad - i * dilation)
        for j in range(kernel_size):
            if stop <= first:
                taps.append(tf.zeros([in_channels, out_channels], inputs.dtype))
                continue
            start = (first + i * dilation) * padded_width + j * dilation
            length = (stop - first) * padded_width
            shifted = rows_in[start * batch:(start + length) * batch]
            taps.append(tf.matmul(shifted, rows_out[first * padded_width * batch:stop * padded_width * batch],
                                  transpose_a=True))
    return tf.reshape(tf.stack(taps), [kernel_size, kernel_size, in_channels, out_channels])


def conv2d_tap_gradient(inputs, kernel, dilation=1):
    """`tf.nn.conv2d(inputs, kernel, 1, "SAME", dilations=dilation)` with `tap_filter_gradient`.

    The input gradient is TensorFlow's own (`Conv2DBackpropInput`). On CPU a
    dilated kernel needs TensorFlow's oneDNN kernels: its Eigen kernels have no
    dilated input gradient.

    Args:
        inputs: `[B, H, W, Cin]` (H, W static).
        kernel: `[k, k, Cin, Cout]`, k odd, same dtype.
        dilation: the kernel's dilation.

    Returns:
        `[B, H, W, Cout]`.
    """

    # The gradient's ops go under the caller's name scope (a Keras layer's name), as a
    # built-in gradient's would, so that profiles attribute them to the layer.
    scope = tf.compat.v1.get_default_graph().get_name_scope()

    @tf.custom_gradient
    def convolve(x, w):
        def gradient(dy):
            with tf.name_scope(f"{scope}/{GRADIENT_SCOPE}/" if scope else GRADIENT_SCOPE):
                dx = tf.raw_ops.Conv2DBackpropInput(
                    input_sizes=tf.shape(x), filter=w, out_backprop=dy, strides=[1, 1, 1, 1], padding="SAME",
                    dilations=[1, dilation, dilation, 1],
                )
                return dx, tap_filter_gradient(x, dy, w.shape[0], dilation)

        return tf.nn.conv2d(x, w, strides=1, padding="SAME", dilations=dilation), gradient

    return convolve(inputs, kernel)
