"""erin's rnn_layers.py: correct, with lists instead of tuples and a dict cache."""
import numpy as np


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o = (1 / (1 + np.exp(-a[:, k * H:(k + 1) * H])) for k in range(3))
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    cache = {"x": x, "h": prev_h, "c": prev_c, "Wx": Wx, "Wh": Wh, "gates": [i, f, o, g],
             "next_c": next_c}
    return [next_h, next_c, cache]


def lstm_step_backward(dnext_h, dnext_c, cache):
    i, f, o, g = cache["gates"]
    t = np.tanh(cache["next_c"])
    dc = dnext_c + dnext_h * o * (1 - t * t)
    da = np.concatenate([dc * g * i * (1 - i), dc * cache["c"] * f * (1 - f),
                         dnext_h * t * o * (1 - o), dc * i * (1 - g * g)], axis=1)
    return [da @ cache["Wx"].T, da @ cache["Wh"].T, dc * f, cache["x"].T @ da,
            cache["h"].T @ da, da.sum(axis=0)]
