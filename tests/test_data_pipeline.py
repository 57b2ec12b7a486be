"""minidl.data, part 2: preprocessing, augmentation and the DataLoader.

Expected values come from the definitions (formulas written out in NumPy, explicit loops over
pixels), never from running the code under test. The `xp` cases re-run the backend-generic code
on CuPy where a GPU is usable and skip otherwise.
"""
import sys

import numpy as np
import pytest

import minidl
from minidl import backends
from minidl import data as mdata

from float_bounds import assert_within, gamma, gcn_error_bound, gcn_zca_error_bound, unit_roundoff


def uint8_images(n, h=4, w=4, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- preprocessing

def test_to_float_scales_to_unit_interval():
    images = np.array([0, 1, 128, 255], np.uint8).reshape(1, 2, 2, 1)
    x = mdata.to_float(images)
    assert x.dtype == np.float32 and x.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(x.ravel(), np.array([0, 1, 128, 255], np.float32) / np.float32(255))
    assert x.max() == 1.0
    with pytest.raises(TypeError, match="expected uint8 images, got dtype float32"):
        mdata.to_float(x)


def test_standardize_per_channel(rng):
    x = (rng.random((50, 4, 5, 3)) * [1.0, 2.0, 3.0] + [0.0, 1.0, -2.0]).astype(np.float32)
    standardize = mdata.Standardize().fit(x, batch_size=7)          # several batches in fit
    reference = x.astype(np.float64)
    mean, std, u = reference.mean(axis=(0, 1, 2)), reference.std(axis=(0, 1, 2)), unit_roundoff()
    # float64 sums of 1000 terms (error < 1e-12 relative), rounded once to float32: u
    np.testing.assert_allclose(standardize.mean, mean, rtol=2 * u)
    # the deviations from the float32 mean round once (2u on their squares); the shift of the centre
    # by u |mean| changes the sum of squares only to second order (it is least at the mean);
    # the square root halves the 2u, the cast to float32 adds u
    np.testing.assert_allclose(standardize.std, std, rtol=3 * u)
    y = standardize(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    # checked in float64 (a float32 mean of 1000 terms could be off by gamma_1000 mean|y| ~ 5e-5):
    # y = (x - mean32) / std32 rounds twice (2u |y|), and the exact mean of (x - mean32) / std32 is
    # (mean - mean32) / std32, at most u |mean| / std32
    white = y.astype(np.float64)
    assert_within(white.mean(axis=(0, 1, 2)), np.zeros(3),
                  u * (np.abs(mean) / std + 2 * np.abs(white).mean(axis=(0, 1, 2))) * 1.01, "mean of y")
    # std(y) = std(x) / std32 (1 + 3u) up to y's own rounding (2u)
    np.testing.assert_allclose(white.std(axis=(0, 1, 2)), 1, atol=5.01 * u)
    restored = mdata.Standardize(eps=0.5)
    restored.load_state_dict(standardize.state_dict())
    assert restored.eps == standardize.eps
    np.testing.assert_array_equal(restored(x), y)
    assert all(isinstance(v, (np.ndarray, float)) for v in standardize.state_dict().values())
    with pytest.raises(RuntimeError, match="not fitted yet; call fit"):
        mdata.Standardize()(x)
    with pytest.raises(ValueError, match="fitted on 3 channels"):
        standardize(x[..., :1])
    with pytest.raises(TypeError, match="expected float images"):
        standardize(uint8_images(2))


@pytest.mark.parametrize("use_std", [False, True])
def test_global_contrast_normalize(rng, use_std):
    x = rng.random((6, 4, 4, 3)).astype(np.float32)
    x[1] = 0.3                                                        # a flat image: no contrast
    gcn = mdata.GlobalContrastNormalize(scale=55.0, use_std=use_std)
    y = gcn(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    flat = y.reshape(6, -1).astype(np.float64)
    # tolerances: e_g, the float32 error bound of each value (float_bounds.gcn_error_bound), and in
    # float64 (the checks' own sums are ~1e-13 of these)
    _, e_g = gcn_error_bound(x, 55.0, use_std=use_std)
    assert_within(flat.mean(axis=1), np.zeros(6), e_g.mean(axis=1) + 1e-12, "means")   # the exact mean is 0
    spread = flat.std(axis=1) if use_std else np.linalg.norm(flat, axis=1)
    # the exact norm (std) is 55; y is within |e_g|_2 of the exact values (1/sqrt(d) of it for the std)
    spread_bound = np.linalg.norm(e_g, axis=1) / (np.sqrt(e_g.shape[1]) if use_std else 1)
    assert_within(np.delete(spread, 1), np.full(5, 55.0), np.delete(spread_bound, 1) + 1e-12, "norms")
    np.testing.assert_array_equal(y[1], 0)                            # no NaN from 0 / 0
    # the formula written out for one image
    image = x[0].astype(np.float64).ravel()
    centered = image - image.mean()
    divisor = np.sqrt((centered ** 2).mean()) if use_std else np.sqrt((centered ** 2).sum())
    assert_within(y[0].ravel(), 55.0 * centered / divisor, e_g[0] + 1e-12, "GCN of image 0")   # + float64's rounding
    # brightness and contrast no longer matter: in exact arithmetic GCN(2.5 x + 0.7) = GCN(x); in float32
    # the input 2.5 x + 0.7 rounds twice (err <= u (2.5 |x| + |2.5 x + 0.7|); the rounding of 0.7 is a shift
    # GCN removes), which moves the exact GCN by at most scale |err|_2 / |2.5 c|_2 (the derivative of
    # scale c / |c| has norm scale / |c|), plus each side's own rounding bound
    moved = (2.5 * x + 0.7).astype(np.float32)
    _, e_moved = gcn_error_bound(moved, 55.0, use_std=use_std)
    u = unit_roundoff()
    err = u * (2.5 * np.abs(x) + np.abs(moved.astype(np.float64))).reshape(6, -1)
    centered_all = x.reshape(6, -1).astype(np.float64) - x.reshape(6, -1).astype(np.float64).mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centered_all, axis=1, keepdims=True) * (np.sqrt(1 / centered_all.shape[1]) if use_std else 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(norms > 0, 55.0 * np.linalg.norm(err, axis=1, keepdims=True) / (2.5 * norms) * 1.01, 0)
    assert_within(gcn(moved).reshape(6, -1), y.reshape(6, -1), e_g + e_moved + shift, "GCN(2.5 x + 0.7) vs GCN(x)")


def test_gcn_sqrt_bias_and_state(rng):
    x = rng.random((3, 2, 2, 1)).astype(np.float32)
    gcn = mdata.GlobalContrastNormalize(scale=2.0, sqrt_bias=10.0, use_std=True)
    exact = x.reshape(3, -1).astype(np.float64)
    centered = exact - exact.mean(axis=1, keepdims=True)
    expected = 2.0 * centered / np.sqrt(10.0 + (centered ** 2).mean(axis=1, keepdims=True))
    # the derived float32 bound (float_bounds.gcn_error_bound), + 1e-12 for the float64 reference's own rounding
    assert_within(gcn(x).reshape(3, -1), expected, gcn_error_bound(x, 2.0, 10.0, use_std=True)[1] + 1e-12,
                  "GCN with sqrt_bias")
    other = mdata.GlobalContrastNormalize()
    other.load_state_dict(gcn.state_dict())
    np.testing.assert_array_equal(other(x), gcn(x))
    with pytest.raises(ValueError, match="scale must be positive"):
        mdata.GlobalContrastNormalize(scale=0)


def test_zca_whitening_gives_identity_covariance(rng):
    # correlated pixels: random mixtures of a few smooth patterns
    n, shape = 400, (3, 3, 2)
    d = int(np.prod(shape))
    mixing = rng.standard_normal((d, d)) * np.linspace(0.1, 3.0, d)
    x = (rng.standard_normal((n, d)) @ mixing.T + 5.0).astype(np.float32).reshape(n, *shape)
    before = np.cov(x.reshape(n, d).astype(np.float64), rowvar=False, bias=True)
    assert np.abs(before - np.diag(np.diag(before))).max() > 1.0      # strongly correlated to begin with
    zca = mdata.ZCAWhitening(eps=1e-6, batch_size=64, progress=False).fit(x)
    white = zca(x).reshape(n, d).astype(np.float64)
    s, u = np.linalg.eigh(before)
    # tolerances, derived (unit roundoff r = 2**-24; the checks themselves run in float64):
    # W32: the float64 W rounded to float32 (r |W|), after the float64 roundings of the covariance
    # (|dC| <= gamma64_n |x - m|^T |x - m| / n) and of eigh (gamma64_d |C|_2), which move C^(-1/2) by at most
    # |dC| / (2 (s_min + eps)^(3/2)) (the largest derivative of (s + eps)^(-1/2) on the spectrum)
    r, w_abs, centred = unit_roundoff(), np.abs(zca.whiten.astype(np.float64)), x.reshape(n, d) - x.reshape(n, d).mean(axis=0, dtype=np.float64)
    d_cov = np.linalg.norm(gamma(n, np.float64) * np.abs(centred).T @ np.abs(centred) / n) + gamma(d, np.float64) * s.max()
    w_bound = 1.01 * (r * w_abs + d_cov / (2 * (s.min() + 1e-6) ** 1.5))
    # white = fl((x - mu32) @ W32), sums of d products: e_y <= gamma_d |x - mu32| @ |W| + (r |x - mu32|) @ |W|
    z = x.reshape(n, d).astype(np.float64) - zca.mean
    e_y = gamma(d) * (np.abs(z) @ w_abs) + (r * np.abs(z)) @ w_abs
    # the exact mean of (x - mu32) @ W32 is (mean(x) - mu32) @ W32; the rounding adds at most mean(e_y)
    assert_within(white.mean(axis=0), np.zeros(d),
                  1.01 * (np.abs((x.reshape(n, d).mean(axis=0, dtype=np.float64) - zca.mean) @ zca.whiten.astype(np.float64)) + e_y.mean(axis=0)),
                  "mean of the whitened images")
    # exact ZCA with eps gives the covariance W C W = U diag(s / (s + eps)) U^T (not quite I); W32's rounding
    # moves it by |dW| |C W| + |W C| |dW|, the whitening's rounding by 2 |y|^T e_y / n + e_y^T e_y / n
    target = u @ np.diag(s / (s + 1e-6)) @ u.T
    cw = np.abs(before @ zca.whiten.astype(np.float64))
    y_abs = np.abs(z @ zca.whiten.astype(np.float64))
    cov_bound = w_bound @ cw + cw.T @ w_bound + 2 * (y_abs.T @ e_y) / n + (e_y.T @ e_y) / n
    assert_within(np.cov(white, rowvar=False, bias=True), target, 1.01 * cov_bound, "covariance of the whitened images")
    # and that is I up to eps / (s + eps) in each eigendirection (an entry of U diag(.) U^T is at most its max)
    assert_within(np.cov(white, rowvar=False, bias=True), np.eye(d), 1e-6 / (s.min() + 1e-6) + 1.01 * cov_bound,
                  "covariance of the whitened images vs I")
    # ZCA: a symmetric W; the float64 product U diag U^T is symmetric up to gamma64_d |U| diag |U|^T, then both
    # entries round to float32
    u_scaled = np.abs(u) / np.sqrt(s + 1e-6)
    assert_within(zca.whiten, zca.whiten.T, 2 * r * w_abs + 2 * gamma(d, np.float64) * (u_scaled @ np.abs(u).T), "W vs W^T")
    # the definition: W = U diag(1/sqrt(S + eps)) U^T of the (biased) covariance
    assert_within(zca.whiten, u @ np.diag(1 / np.sqrt(s + 1e-6)) @ u.T,
                  w_bound + gamma(d, np.float64) * (u_scaled @ np.abs(u).T), "W vs its definition")
    # one block or many: the same statistics, each within w_bound of the exact W
    single = mdata.ZCAWhitening(eps=1e-6, batch_size=n, progress=False).fit(x)
    assert_within(single.whiten, zca.whiten, 2 * w_bound, "W fitted in one block vs blocks of 64")
    # a larger eps whitens more gently: the weakest directions keep less than unit variance
    gentle = mdata.ZCAWhitening(eps=1.0, progress=False).fit(x)
    assert np.trace(np.cov(gentle(x).reshape(n, d).astype(np.float64), rowvar=False)) < d - 1
    restored = mdata.ZCAWhitening()
    restored.load_state_dict(zca.state_dict())
    np.testing.assert_array_equal(restored(x[:5]), zca(x[:5]))
    with pytest.raises(ValueError, match="fitted on images of 18 values"):
        zca(np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(KeyError, match="lacks \\['whiten'\\]"):
        mdata.ZCAWhitening().load_state_dict({"eps": 0.1, "mean": zca.mean})


def test_compose_fits_each_transform_on_the_previous_output(rng):
    x = rng.random((30, 4, 4, 3)).astype(np.float32)
    gcn = mdata.GlobalContrastNormalize(scale=1.0)
    standardize = mdata.Standardize()
    both = mdata.Compose([gcn, standardize]).fit(x, batch_size=8)
    after_gcn = gcn(x).astype(np.float64)
    # Standardize is fitted on GCN outputs computed in chunks of 8: each value within e_g of the exact GCN,
    # as are those here (2 e_g between them); the float64 mean rounded to float32 adds u |mean|
    _, e_g = gcn_error_bound(x, 1.0)
    fitted_mean = after_gcn.mean(axis=(0, 1, 2))
    assert_within(standardize.mean, fitted_mean,
                  1.01 * (2 * e_g.reshape(x.shape).mean(axis=(0, 1, 2)) + unit_roundoff() * np.abs(fitted_mean)), "fitted mean")
    np.testing.assert_array_equal(both(x), standardize(gcn(x)))     # Compose runs exactly these two calls
    copy = mdata.Compose([mdata.GlobalContrastNormalize(), mdata.Standardize()])
    copy.load_state_dict(both.state_dict())
    np.testing.assert_array_equal(copy(x), both(x))
    with pytest.raises(KeyError, match="expected the states of 1 transforms"):
        mdata.Compose([mdata.Standardize()]).load_state_dict(both.state_dict())


# ---------------------------------------------------------------------------------------------- augmentation

def translate_reference(image, dy, dx):
    """out[r, c] = image[r - dy, c - dx] where that exists, else 0: pixel by pixel."""
    height, width, _ = image.shape
    out = np.zeros_like(image)
    for r in range(height):
        for c in range(width):
            if 0 <= r - dy < height and 0 <= c - dx < width:
                out[r, c] = image[r - dy, c - dx]
    return out


def test_translate_matches_a_pixel_by_pixel_reference():
    x = np.arange(1, 1 + 9 * 5 * 6 * 2, dtype=np.float32).reshape(9, 5, 6, 2)
    shifts = np.array([[dy, dx] for dy in (-2, 0, 2) for dx in (-1, 0, 3)])
    got = mdata.translate(x, shifts)
    assert got.shape == x.shape and got.dtype == x.dtype
    for i, (dy, dx) in enumerate(shifts):
        np.testing.assert_array_equal(got[i], translate_reference(x[i], dy, dx))
    with pytest.raises(ValueError, match=r"shifts must have shape \(N, 2\) = \(9, 2\), got \(9,\)"):
        mdata.translate(x, shifts[:, 0])


def recover_shift(original, shifted, pad):
    """The (dy, dx) in [-pad, pad]^2 that turns ``original`` into ``shifted``; None if there is none."""
    found = [(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)
             if np.array_equal(translate_reference(original, dy, dx), shifted)]
    return found[0] if len(found) == 1 else None


def test_random_translate_shifts_each_image_within_pad_and_is_seeded():
    x = np.arange(1, 1 + 40 * 6 * 6, dtype=np.float32).reshape(40, 6, 6, 1)
    got = mdata.random_translate(x, 2, np.random.default_rng(11))
    shifts = [recover_shift(x[i], got[i], 2) for i in range(len(x))]
    assert None not in shifts                                         # every image is a shifted copy
    assert len(set(shifts)) > 10                                      # and the shifts vary
    assert {dy for dy, _ in shifts} == {-2, -1, 0, 1, 2}
    np.testing.assert_array_equal(mdata.random_translate(x, 2, np.random.default_rng(11)), got)
    assert not np.array_equal(mdata.random_translate(x, 2, np.random.default_rng(12)), got)
    assert mdata.random_translate(x, 0, np.random.default_rng(0)) is x
    with pytest.raises(ValueError, match="pad must be an int >= 0, got -1"):
        mdata.random_translate(x, -1)


def test_hflip_flips_exactly_the_chosen_images():
    x = np.arange(4 * 2 * 3 * 2, dtype=np.float32).reshape(4, 2, 3, 2)
    got = mdata.hflip(x, [True, False, False, True])
    for i, flipped in enumerate([True, False, False, True]):
        expected = x[i, :, [2, 1, 0], :].transpose(1, 0, 2) if flipped else x[i]
        np.testing.assert_array_equal(got[i], expected)


def test_random_hflip_is_seeded_and_respects_p():
    x = np.random.default_rng(0).random((64, 3, 4, 2)).astype(np.float32)
    got = mdata.random_hflip(x, np.random.default_rng(3))
    flipped = [np.array_equal(got[i], x[i, :, ::-1]) for i in range(64)]
    kept = [np.array_equal(got[i], x[i]) for i in range(64)]
    assert all(f != k for f, k in zip(flipped, kept))                 # each image: exactly one of the two
    assert 10 < sum(flipped) < 54
    np.testing.assert_array_equal(mdata.random_hflip(x, np.random.default_rng(3)), got)
    np.testing.assert_array_equal(mdata.random_hflip(x, np.random.default_rng(3), p=0.0), x)
    np.testing.assert_array_equal(mdata.random_hflip(x, np.random.default_rng(3), p=1.0), x[:, :, ::-1])


def test_augment_combines_translate_and_flip():
    x = np.arange(1, 1 + 20 * 5 * 5, dtype=np.float32).reshape(20, 5, 5, 1)
    augment = mdata.Augment(pad=1, flip=True)
    got = augment(x, np.random.default_rng(2))
    np.testing.assert_array_equal(augment(x, np.random.default_rng(2)), got)
    for i in range(len(x)):                       # every output: a shift of the image or of its mirror
        assert (recover_shift(x[i], got[i], 1) is not None) or (recover_shift(x[i, :, ::-1], got[i], 1) is not None)
    np.testing.assert_array_equal(mdata.Augment(pad=0, flip=False)(x), x)
    minidl.manual_seed(4)
    first = augment(x)
    minidl.manual_seed(4)
    np.testing.assert_array_equal(augment(x), first)                 # default: minidl's seeded generator
    with pytest.raises(ValueError, match="flip_probability must lie in"):
        mdata.Augment(flip_probability=2)


# ---------------------------------------------------------------------------------------------- DataLoader

def numbered_dataset(n=23, size=3, classes=3):
    """Image i is filled with the value i, so a batch tells which samples it holds."""
    images = np.repeat(np.arange(n, dtype=np.uint8), size * size * 3).reshape(n, size, size, 3)
    return mdata.ArrayDataset(images, np.arange(n) % classes, [f"c{k}" for k in range(classes)])


def sample_ids(x):
    """The sample numbers of a batch from numbered_dataset (no transform, no augmentation)."""
    return np.rint(backends.to_numpy(x)[:, 0, 0, 0] * 255).astype(int)


def test_loader_epoch_covers_every_sample_once_in_a_seeded_order():
    ds = numbered_dataset()
    loader = mdata.DataLoader(ds, 5, shuffle=True)
    assert len(loader) == 5
    minidl.manual_seed(1)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    ids = np.concatenate([sample_ids(x) for x, _ in batches])
    assert sorted(ids.tolist()) == list(range(23))                   # each sample exactly once
    assert ids.tolist() != list(range(23))                           # shuffled
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), ds.labels[ids])   # labels follow images
    second_epoch = np.concatenate([sample_ids(x) for x, _ in loader])
    assert sorted(second_epoch.tolist()) == list(range(23)) and second_epoch.tolist() != ids.tolist()
    minidl.manual_seed(1)       # the generator is looked up when the epoch starts, so re-seeding reproduces it
    np.testing.assert_array_equal(np.concatenate([sample_ids(x) for x, _ in loader]), ids)


def test_loader_batches_are_channels_last_float32_views():
    ds = numbered_dataset(n=10, size=4)
    x, y = next(iter(mdata.DataLoader(ds, 4, shuffle=False)))
    assert x.shape == (4, 3, 4, 4) and x.dtype == np.float32
    assert y.shape == (4,) and y.dtype == np.int64
    assert x.transpose(0, 2, 3, 1).flags.c_contiguous                # NHWC memory ...
    assert not x.flags.c_contiguous                                  # ... seen as (N, C, H, W)
    np.testing.assert_array_equal(x.transpose(0, 2, 3, 1), mdata.to_float(ds.images[:4]))
    assert sample_ids(x).tolist() == [0, 1, 2, 3]


def test_loader_without_shuffle_and_drop_last():
    ds = numbered_dataset(n=23)
    keep_all = mdata.DataLoader(ds, 5, shuffle=False)
    assert np.concatenate([sample_ids(x) for x, _ in keep_all]).tolist() == list(range(23))
    dropping = mdata.DataLoader(ds, 5, shuffle=True, drop_last=True)
    assert len(dropping) == 4
    assert [len(y) for _, y in dropping] == [5, 5, 5, 5]
    assert len(mdata.DataLoader(ds, 23, drop_last=True)) == 1 and len(mdata.DataLoader(ds, 24, drop_last=True)) == 0
    assert len(mdata.DataLoader(ds, 24)) == 1
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        mdata.DataLoader(ds, 0)


def test_loader_uses_its_own_generator_for_order_and_augmentation():
    ds = numbered_dataset()
    seen = []

    def augment(x, rng):
        seen.append(rng)
        return x
    generator = np.random.default_rng(5)
    loader = mdata.DataLoader(ds, 8, rng=generator, augment=augment)
    ids = np.concatenate([sample_ids(x) for x, _ in loader])
    assert seen == [generator] * 3
    np.testing.assert_array_equal(ids, np.random.default_rng(5).permutation(23))
    again = mdata.DataLoader(ds, 8, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(np.concatenate([sample_ids(x) for x, _ in again]), ids)


def test_loader_applies_transform_then_augment():
    ds = numbered_dataset(n=6)
    standardize = mdata.Standardize().fit(mdata.to_float(ds.images))
    calls = []

    def augment(x, rng):
        calls.append(x.copy())
        return x[:, :, ::-1]
    loader = mdata.DataLoader(ds, 6, shuffle=False, transform=standardize, augment=augment)
    x, _ = next(iter(loader))
    expected = standardize(mdata.to_float(ds.images))
    np.testing.assert_allclose(calls[0], expected)                   # augment saw the standardized batch
    np.testing.assert_allclose(x.transpose(0, 2, 3, 1), expected[:, :, ::-1])
    assert x.transpose(0, 2, 3, 1).flags.c_contiguous                # still channels-last after a strided augment


def test_pipeline_on_each_backend(xp):
    """The same batch on NumPy and (where a GPU is usable) CuPy: equal values, arrays of that backend."""
    ds = numbered_dataset(n=12, size=6)
    prep = mdata.Compose([mdata.GlobalContrastNormalize(), mdata.ZCAWhitening(progress=False)]).fit(
        mdata.to_float(ds.images[:10]) + np.random.default_rng(0).random((10, 6, 6, 3), dtype=np.float32))
    name = "cupy" if xp is not np else "numpy"
    results = {}
    for backend in ("numpy", name):
        loader = mdata.DataLoader(ds, 12, transform=prep, augment=mdata.Augment(pad=2),
                                  rng=np.random.default_rng(9), backend=backend)
        x, y = next(iter(loader))
        assert backends.get_array_module(x) is backends.array_module(backend)
        assert backends.get_array_module(y) is backends.array_module(backend)
        assert x.transpose(0, 2, 3, 1).flags.c_contiguous
        results[backend] = (backends.to_numpy(x), backends.to_numpy(y))
    # two float32 runs of GCN + ZCA (CuPy and NumPy sum in other orders): twice the derived bound of each,
    # taken through the same augmentation (raised by 2u so that its float32 cast cannot round it below)
    bound = 2 * gcn_zca_error_bound(prep, mdata.to_float(ds.images)) * (1 + 2 * unit_roundoff())
    bounds = mdata.ArrayDataset(bound.astype(np.float32), ds.labels, ds.classes)
    tolerance, _ = next(iter(mdata.DataLoader(bounds, 12, augment=mdata.Augment(pad=2), rng=np.random.default_rng(9),
                                                  backend="numpy")))   # NumPy whatever backend the test runs under
    assert_within(results[name][0], results["numpy"][0], tolerance, f"{name} vs numpy batches")
    np.testing.assert_array_equal(results[name][1], results["numpy"][1])


# ---------------------------------------------------------------------------------------------- preprocessing once

def fitted_gcn_zca(images):
    """GCN + ZCA fitted on uint8 images, as the recipe's --preprocess gcn-zca does."""
    return mdata.Compose([mdata.GlobalContrastNormalize(), mdata.ZCAWhitening(progress=False)]).fit(
        mdata.to_float(images))


def test_apply_to_images_is_the_transform_chunk_by_chunk(backend, capsys, monkeypatch):
    """Each chunk runs on the active backend (the GPU under CuPy); the result is float32 on the host."""
    images = uint8_images(23, 5, 5, 3, seed=3)
    prep = fitted_gcn_zca(uint8_images(60, 5, 5, 3, seed=4))
    expected = backends.to_numpy(prep(mdata.to_float(backends.to_backend(images))))   # all at once
    # two float32 runs of the same formula, summed in other orders (the BLAS blocking depends on the rows):
    # each is within the derived bound of the exact result, so they are within twice it of each other
    tolerance = 2 * gcn_zca_error_bound(prep, mdata.to_float(images))
    for chunk_size in (1, 7, 23, 100):                                       # chunks that do and do not divide 23
        got = mdata.apply_to_images(prep, images, chunk_size=chunk_size, progress=False)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == images.shape
        assert_within(got, expected, tolerance, f"chunks of {chunk_size}")
    assert capsys.readouterr().err == ""                                     # progress=False: no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)                   # bars show on a terminal only
    mdata.apply_to_images(prep, images, chunk_size=10, progress=True, desc="whitening here")
    assert "whitening here" in capsys.readouterr().err
    with pytest.raises(TypeError, match="expected uint8 images"):
        mdata.apply_to_images(prep, mdata.to_float(images))
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1, got 0"):
        mdata.apply_to_images(prep, images, chunk_size=0)
    with pytest.raises(ValueError, match=r"changed the shape of the images from \(10, 5, 5, 3\) to \(10, 1, 1, 1\)"):
        mdata.apply_to_images(lambda x: x.mean(axis=(1, 2, 3), keepdims=True), images, chunk_size=10, progress=False)


def test_loader_over_preprocessed_images_gives_the_per_batch_batches():
    """GCN + ZCA applied once, then a loader without transform: the batches of the old per-batch way
    (same seed, augmentation on, so the zero padding of the translation lands on whitened images)."""
    ds = mdata.ArrayDataset(uint8_images(50, 6, 6, 3, seed=5), np.arange(50) % 4, ["a", "b", "c", "d"])
    prep = fitted_gcn_zca(ds.images)
    once = mdata.ArrayDataset(mdata.apply_to_images(prep, ds.images, chunk_size=16, progress=False), ds.labels, ds.classes)
    augment = mdata.Augment(pad=2, flip=True)
    per_batch = mdata.DataLoader(ds, 8, shuffle=True, transform=prep, augment=augment, rng=np.random.default_rng(7))
    preprocessed = mdata.DataLoader(once, 8, shuffle=True, augment=augment, rng=np.random.default_rng(7))
    # the tolerance: twice the derived bound of each float32 run (per batch of 8 vs chunks of 16, so the
    # products are blocked, and summed, differently), taken through the same shuffle and augmentation
    # (stored as float32, so raised by 2u first: the cast cannot round it below the bound)
    bound = 2 * gcn_zca_error_bound(prep, mdata.to_float(ds.images)) * (1 + 2 * unit_roundoff())
    bounds = mdata.ArrayDataset(bound.astype(np.float32), ds.labels, ds.classes)
    tolerances = mdata.DataLoader(bounds, 8, shuffle=True, augment=augment, rng=np.random.default_rng(7))
    old, new = list(per_batch), list(preprocessed)
    assert len(old) == len(new) == 7
    for (x_old, y_old), (x_new, y_new), (tolerance, _) in zip(old, new, tolerances):
        assert x_new.dtype == np.float32 and x_new.transpose(0, 2, 3, 1).flags.c_contiguous
        assert_within(x_new, x_old, tolerance, "preprocessed once vs per batch")
        np.testing.assert_array_equal(y_new, y_old)
    assert max(float(np.abs(x).max()) for x, _ in old) > 1                   # whitened values, not [0, 1] pixels
    assert any((x == 0).all(axis=1).any() for x, _ in new)                   # some zero padding was drawn


def test_loader_takes_float32_images_as_they_are():
    values = np.random.default_rng(6).normal(0, 3, (10, 4, 4, 3)).astype(np.float32)     # not in [0, 1]
    ds = mdata.ArrayDataset(values, np.arange(10) % 2, ["a", "b"])
    x, y = next(iter(mdata.DataLoader(ds, 10, shuffle=False)))
    assert x.dtype == np.float32 and x.transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_array_equal(x.transpose(0, 2, 3, 1), values)           # no division by 255, no copy back
    x.transpose(0, 2, 3, 1)[...] = 0                                         # a batch never aliases the data set
    np.testing.assert_array_equal(ds.images, values)
    doubled, _ = next(iter(mdata.DataLoader(ds, 4, shuffle=False, transform=lambda b: 2 * b)))
    np.testing.assert_array_equal(doubled.transpose(0, 2, 3, 1), 2 * values[:4])   # a transform still applies
