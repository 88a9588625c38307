"""Independent NumPy implementations of the paper's equations (NHWC, float64).

Weights are passed as plain arrays so these functions know nothing about the
Keras layers they check.
"""

import numpy as np


def conv1x1(x, kernel, bias):
    return np.einsum("nhwc,cd->nhwd", x, kernel[0, 0]) + bias


def conv2d_same(x, kernel, bias):
    """Stride-1 'same' convolution, odd kernel, by explicit sliding window."""
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for i in range(k):
        for j in range(k):
            window = padded[:, i : i + height, j : j + width, :]
            out += np.einsum("nhwc,cd->nhwd", window, kernel[i, j])
    return out + bias


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def hard_swish(x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def batch_norm(x, gamma, beta, mean, var, eps, training):
    """BatchNorm over every axis but the last; batch statistics in training."""
    if training:
        axes = tuple(range(x.ndim - 1))
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def coord_attention(x, w, training, eps=1e-5, directions="hw", normalization="batch"):
    """y_c(i, j) = x_c(i, j) * g^h_c(i) * g^w_c(j), Section 3.2 of the paper.

    ``normalization="layer"``: F1's output normalised per image over its rows, columns and
    channels together (mean and variance of the whole (H + W) x mip descriptor), then
    scaled per channel, instead of BatchNorm.
    """
    height = x.shape[1]
    z_h = x.mean(axis=2)  # (N, H, C): z^h_c(h) = 1/W sum_i x_c(h, i)
    z_w = x.mean(axis=1)  # (N, W, C): z^w_c(w) = 1/H sum_j x_c(j, w)
    parts = {"h": z_h, "w": z_w}
    descriptor = np.concatenate([parts[d] for d in directions], axis=1)[:, :, None]
    f = conv1x1(descriptor, w["conv_reduce/kernel"], w["conv_reduce/bias"])
    if normalization == "layer":
        mean = f.mean(axis=(1, 2, 3), keepdims=True)
        var = f.var(axis=(1, 2, 3), keepdims=True)
        f = hard_swish((f - mean) / np.sqrt(var + eps) * w["norm/gamma"] + w["norm/beta"])
    else:
        f = hard_swish(
            batch_norm(
                f, w["bn/gamma"], w["bn/beta"], w["bn/moving_mean"],
                w["bn/moving_variance"], eps, training,
            )
        )
    y = x
    if directions == "hw":
        f_parts = {"h": f[:, :height], "w": f[:, height:]}
    else:
        f_parts = {directions: f}
    if "h" in f_parts:
        g_h = sigmoid(conv1x1(f_parts["h"], w["conv_h/kernel"], w["conv_h/bias"]))
        y = y * g_h  # (N, H, 1, C)
    if "w" in f_parts:
        g_w = sigmoid(conv1x1(f_parts["w"], w["conv_w/kernel"], w["conv_w/bias"]))
        y = y * g_w.transpose(0, 2, 1, 3)  # (N, 1, W, C)
    return y


def squeeze_excite(x, w, activation=lambda v: np.clip(v, 0.0, 6.0)):
    squeezed = x.mean(axis=(1, 2), keepdims=True)
    hidden = activation(conv1x1(squeezed, w["conv_reduce/kernel"], w["conv_reduce/bias"]))
    return x * sigmoid(conv1x1(hidden, w["conv_expand/kernel"], w["conv_expand/bias"]))


def cbam(x, w):
    def mlp(descriptor):
        hidden = np.maximum(
            conv1x1(descriptor, w["conv_reduce/kernel"], w["conv_reduce/bias"]), 0.0
        )
        return conv1x1(hidden, w["conv_expand/kernel"], w["conv_expand/bias"])

    average = x.mean(axis=(1, 2), keepdims=True)
    maximum = x.max(axis=(1, 2), keepdims=True)
    refined = x * sigmoid(mlp(average) + mlp(maximum))
    maps = np.concatenate(
        [refined.mean(axis=-1, keepdims=True), refined.max(axis=-1, keepdims=True)],
        axis=-1,
    )
    gate = sigmoid(conv2d_same(maps, w["conv_spatial/kernel"], w["conv_spatial/bias"]))
    return refined * gate


def eca(x, w):
    """ECA (Wang et al. 2020): a k-tap 1D conv across the pooled channels, zero padded."""
    taps = w["conv/kernel"].reshape(-1)
    k = len(taps)
    pooled = x.mean(axis=(1, 2))  # (N, C)
    padded = np.pad(pooled, ((0, 0), (k // 2, k // 2)))
    channels = pooled.shape[1]
    logits = sum(taps[i] * padded[:, i : i + channels] for i in range(k))
    return x * sigmoid(logits)[:, None, None, :]


def simam(x, e_lambda=1e-4):
    """SimAM (Yang et al. 2021), its Eq. for the inverse minimal energy of each neuron."""
    n = x.shape[1] * x.shape[2] - 1
    d = (x - x.mean(axis=(1, 2), keepdims=True)) ** 2
    v = d.sum(axis=(1, 2), keepdims=True) / n
    return x * sigmoid(d / (4 * (v + e_lambda)) + 0.5)


def ela(x, w, groups, eps=1e-5):
    """ELA (Xu and Wan 2024): strip pooling, one depthwise 1D conv and one GroupNorm for both."""
    kernel = w["conv/kernel"][:, 0, :, 0]  # (k, C)
    k = kernel.shape[0]

    def gate(strips):  # (N, L, C)
        length = strips.shape[1]
        padded = np.pad(strips, ((0, 0), (k // 2, k // 2), (0, 0)))
        conv = sum(kernel[i] * padded[:, i : i + length, :] for i in range(k))
        n, _, c = conv.shape
        grouped = conv.reshape(n, length, groups, c // groups)
        mean = grouped.mean(axis=(1, 3), keepdims=True)
        var = grouped.var(axis=(1, 3), keepdims=True)
        normed = ((grouped - mean) / np.sqrt(var + eps)).reshape(n, length, c)
        return sigmoid(normed * w["norm/gamma"] + w["norm/beta"])

    g_h = gate(x.mean(axis=2))  # a descriptor per row
    g_w = gate(x.mean(axis=1))  # per column
    return x * g_h[:, :, None, :] * g_w[:, None, :, :]
