/* Compiled kernels of the reference's time-batched plan (snnc/backends/ckernels.py loads them
 * with ctypes; the plan falls back to numpy when they are not built).
 *
 * Every value is a Loihi integer held in a float (fixed point, as in reference_batched.py), and
 * every operation below is the one numpy does there, in IEEE double: the results are the same
 * bits. Built without -ffast-math and with -ffp-contract=off (setup.py): no reassociation, no
 * fused multiply-add. Arrays are C-contiguous; time is the leading axis (a chunk of steps). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("avx2", "sse4.1", "default")))
#else
#define CLONES
#endif

/* One step of a fixed-point CUBA LIF population reset to zero, with no bound reachable
 * (reference_batched._no_bound_reached), over m neurons:
 *   u = trunc(u * cu) + a * 64  (U; else u is the step's input a * 64: decay_u 4096)
 *   v = trunc(v * cv) + (bias + u + drive * scale);  s = v > vth (v >= vth: ge);  v = 0 where s.
 * a: the step's synapse sums (A: 0 absent, 1 float32 af, 2 float64 ad), drive: its bias-input
 * values (D: likewise, df / dd; 3: float64 dd, neuron j at dd[j * dj], e.g. a user's time-last
 * array read in place); cu per neuron (U); cv, vth: per neuron (CVA, VTA) or one value
 * (cv[0], vth[0]); s: uint8 0/1. Every value is an integer below 2**53 (products by cu and cv
 * too: 12 fractional bits), so the sums are exact in any order. A, D, U, CVA, VTA are constants
 * where it is inlined (one vectorized loop each; inlined into each target clone of
 * snnc_lif_zero, so that the AVX2 one has AVX2 loops). Returns how many drive * scale are not
 * whole numbers (the caller's error). */
static inline __attribute__((always_inline)) int64_t
lif_zero_step(int64_t m, double *restrict v, double *restrict u, const float *restrict af,
              const double *restrict ad, const float *restrict df, const double *restrict dd, int64_t dj, double scale,
              const double *restrict bias, const double *restrict cu, const double *restrict cv,
              const double *restrict vth, int ge, uint8_t *restrict s,
              const int A, const int D, const int U, const int CVA, const int VTA)
{
    int64_t bad = 0;
    const double c0 = cv[0], th0 = vth[0];
    for (int64_t j = 0; j < m; j++) {
        double in = 0.0;
        if (A == 1) in = (double)af[j] * 64.0;
        if (A == 2) in = ad[j] * 64.0;
        if (U) {
            in += trunc(u[j] * cu[j]);
            u[j] = in;
        }
        double add = bias[j] + in;
        if (D) {
            double d = (D == 1 ? (double)df[j] : D == 2 ? dd[j] : dd[j * dj]) * scale;
            bad += (d != trunc(d));
            add += d;
        }
        double th = VTA ? vth[j] : th0;
        double x = trunc(v[j] * (CVA ? cv[j] : c0)) + add;
        int spike = (x > th) | (ge & (x == th));
        s[j] = (uint8_t)spike;
        v[j] = spike ? 0.0 : x;
    }
    return bad;
}

#define LIF_CASE(A, D, U, CVA, VTA)                                                                \
    case (((A * 4 + D) * 2 + U) * 2 + CVA) * 2 + VTA:                                              \
        return lif_zero_step(m, v, u, af, ad, df, dd, dj, scale, bias, cu, cv, vth, ge, s, A, D, U, CVA, VTA);
#define LIF_CASES_V(A, D, U, CVA) LIF_CASE(A, D, U, CVA, 0) LIF_CASE(A, D, U, CVA, 1)
#define LIF_CASES_C(A, D, U) LIF_CASES_V(A, D, U, 0) LIF_CASES_V(A, D, U, 1)
#define LIF_CASES_U(A, D) LIF_CASES_C(A, D, 0) LIF_CASES_C(A, D, 1)
#define LIF_CASES_D(A) LIF_CASES_U(A, 0) LIF_CASES_U(A, 1) LIF_CASES_U(A, 2) LIF_CASES_U(A, 3)

static inline __attribute__((always_inline)) int64_t
lif_zero_row(int64_t m, double *v, double *u, const float *af, const double *ad, const float *df,
             const double *dd, int64_t dj, double scale, const double *bias, const double *cu, const double *cv,
             const double *vth, int ge, uint8_t *s, int a_type, int d_type, int has_u, int cva, int vta)
{
    switch ((((a_type * 4 + d_type) * 2 + has_u) * 2 + cva) * 2 + vta) {
        LIF_CASES_D(0) LIF_CASES_D(1) LIF_CASES_D(2)
    }
    return 0;
}

/* k steps of n samples of m neurons: v (n, m); u (n, m) and cu (m,), or both NULL (u is the
 * step's input); bias (m,); cv, vth (m,) when cva / vta, else (1,); a, s (k, n, m) C-contiguous;
 * drive (k, n, m) with element strides dt, di, dj (C-contiguous: n * m, m, 1).
 * a_type: 0 absent, 1 float32, 2 float64; d_type: the same, 3 float64 with any dj (1, 2: dj = 1).
 * Returns the count of non-integral drives.
 * (Step by step over all neurons: blocks of 1,024 neurons through all steps measured slower,
 * the input streams dominate. One thread: two threads beside BLAS's own, on this project's 2
 * shared cores, measured slower.) */
CLONES int64_t snnc_lif_zero(int64_t k, int64_t n, int64_t m, double *v, double *u, const double *cu,
                             const void *a, int a_type, const void *drive, int d_type, int64_t dt,
                             int64_t di, int64_t dj, double scale,
                             const double *bias, const double *cv, int cva, const double *vth, int vta, int ge,
                             uint8_t *s)
{
    int64_t bad = 0;
    int has_u = u != NULL && cu != NULL;
    for (int64_t t = 0; t < k; t++)
        for (int64_t i = 0; i < n; i++) {
            int64_t row = (t * n + i) * m, drow = t * dt + i * di;
            bad += lif_zero_row(m, v + i * m, has_u ? u + i * m : NULL, a_type == 1 ? (const float *)a + row : NULL,
                                a_type == 2 ? (const double *)a + row : NULL,
                                d_type == 1 ? (const float *)drive + drow : NULL,
                                d_type >= 2 ? (const double *)drive + drow : NULL, dj, scale, bias, cu, cv, vth,
                                ge, s + row, a_type, d_type, has_u, cva, vta);
        }
    return bad;
}

/* im2col of uint8 spikes x (R, C, H, W) into float patches: out[r * out_r + q * out_q + oy * Wo + ox]
 * = x[r, c, oy * sh + i * dh - ph, ox * sw + j * dw - pw] (0 outside the image), q = (c * kh + i) * kw + j.
 * out_r, out_q: the strides (elements) of a row and of a patch entry, so the patches come out
 * (R, C*kh*kw, Ho*Wo) or (C*kh*kw, R, Ho*Wo). Each image is first cast once into sw planes of
 * its columns (plane p holds columns p, p + sw, ...), so that every patch row is a contiguous
 * copy. Returns 0, or -1 when out of memory for the planes. */
#define IM2COL(NAME, OTYPE)                                                                         \
    CLONES int NAME(const uint8_t *x, int64_t R, int64_t C, int64_t H, int64_t W, int64_t kh,      \
                     int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,       \
                     int64_t dw, int64_t Ho, int64_t Wo, OTYPE *out, int64_t out_r, int64_t out_q)  \
    {                                                                                               \
        int64_t pl = (W + sw - 1) / sw;                 /* a plane's row length, at most */        \
        OTYPE *plane = (OTYPE *)malloc((size_t)(sw * H * pl) * sizeof(OTYPE));                      \
        if (!plane)                                                                                 \
            return -1;                                                                              \
        for (int64_t rc = 0; rc < R * C; rc++) {                                                    \
                int64_t r = rc / C, c = rc % C;                                                     \
                const uint8_t *img = x + rc * H * W;                                                \
                for (int64_t p = 0; p < sw; p++)                                                    \
                    for (int64_t iy = 0; iy < H; iy++) {                                            \
                        OTYPE *dst = plane + (p * H + iy) * pl;                                     \
                        const uint8_t *src = img + iy * W + p;                                      \
                        int64_t len = (W - p + sw - 1) / sw;                                        \
                        if (sw == 1)                                                                \
                            for (int64_t q = 0; q < len; q++) dst[q] = (OTYPE)src[q];               \
                        else                                                                        \
                            for (int64_t q = 0; q < len; q++) dst[q] = (OTYPE)src[q * sw];          \
                    }                                                                               \
                for (int64_t i = 0; i < kh; i++)                                                    \
                    for (int64_t j = 0; j < kw; j++) {                                              \
                        int64_t q = (c * kh + i) * kw + j;                                          \
                        OTYPE *o = out + r * out_r + q * out_q;                                     \
                        int64_t off = j * dw - pw;         /* ix = ox * sw + off */                 \
                        int64_t p = ((off % sw) + sw) % sw;                                         \
                        int64_t base = (off - p) / sw;     /* ix = (ox + base) * sw + p */          \
                        int64_t len = (W - p + sw - 1) / sw;                                        \
                        int64_t lo = base >= 0 ? 0 : -base;                                         \
                        int64_t hi = len - base;                                                    \
                        if (lo > Wo) lo = Wo;                                                       \
                        if (hi > Wo) hi = Wo;                                                       \
                        if (hi < lo) hi = lo;                                                       \
                        for (int64_t oy = 0; oy < Ho; oy++, o += Wo) {                              \
                            int64_t iy = oy * sh + i * dh - ph;                                     \
                            if (iy < 0 || iy >= H) {                                                \
                                memset(o, 0, (size_t)Wo * sizeof(OTYPE));                           \
                                continue;                                                           \
                            }                                                                       \
                            const OTYPE *src = plane + (p * H + iy) * pl + (base + lo);             \
                            if (lo > 0) memset(o, 0, (size_t)lo * sizeof(OTYPE));                   \
                            memcpy(o + lo, src, (size_t)(hi - lo) * sizeof(OTYPE));                 \
                            if (hi < Wo) memset(o + hi, 0, (size_t)(Wo - hi) * sizeof(OTYPE));      \
                        }                                                                           \
                    }                                                                               \
        }                                                                                           \
        free(plane);                                                                                \
        return 0;                                                                                   \
    }

IM2COL(snnc_im2col_u8_f32, float)
IM2COL(snnc_im2col_u8_f64, double)

/* taps[v * k + n] for n < count[v]: the kernel taps i (of k) by which input coordinate v
 * (of n_in) reaches an output o (of n_out), as (i, o) pairs: v = o * stride + i * dil - pad. */
static void conv_taps(int64_t n_in, int64_t k, int64_t stride, int64_t pad, int64_t dil, int64_t n_out,
                      int64_t *taps, int64_t *count)
{
    for (int64_t v = 0; v < n_in; v++) {
        count[v] = 0;
        for (int64_t i = 0; i < k; i++) {
            int64_t t = v + pad - i * dil;
            if (t < 0 || t % stride || t / stride >= n_out)
                continue;
            taps[2 * (v * k + count[v])] = i;
            taps[2 * (v * k + count[v]) + 1] = t / stride;
            count[v]++;
        }
    }
}

/* Event-driven convolution of uint8 spike counts x (R, C, H, W): for every non-zero input
 * x[r, c, y, xx], of group g = c / cpg, out[r, g * opg + o, oy, ox] += x * w[c, i, j, o] where
 * y = oy * sh + i * dh - ph and xx = ox * sw + j * dw - pw. w: (C, kh, kw, opp), each input
 * channel's weights to its group's opg outputs, contiguous in o, zero-padded to opp (a multiple
 * of the 32-byte vector VTYPE: whole vectors, no remainder loop). out: (R, O, Ho, Wo), O =
 * groups * opg; acc: scratch of Ho * Wo * groups * opp entries (channel last, so that a spike
 * adds contiguous vectors; transposed into out per row). The spiking pixels of an image are
 * listed first without branches. Integers below the exact bound of OTYPE (the caller's kernel
 * choice): every order of the sums gives the same value. Returns 0, or -1 when out of memory
 * for its tables. */
#define CONV_EVENTS(NAME, OTYPE, VTYPE)                                                             \
    CLONES int NAME(const uint8_t *x, int64_t R, int64_t C, int64_t H, int64_t W, int64_t kh,      \
                    int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,        \
                    int64_t dw, int64_t Ho, int64_t Wo, int64_t cpg, int64_t opg, int64_t opp,     \
                    int64_t O, const OTYPE *w, OTYPE *out, OTYPE *acc)                              \
    {                                                                                               \
        int64_t hw = Ho * Wo, ga = (O / opg) * opp;      /* acc's row: the groups, padded */       \
        int64_t *yt = malloc(sizeof(int64_t) * (size_t)(2 * H * kh + H + 2 * W * kw + W + 2 * H * W)); \
        if (!yt)                                                                                    \
            return -1;                                                                              \
        int64_t *yn = yt + 2 * H * kh, *xt = yn + H, *xn = xt + 2 * W * kw;                         \
        int32_t *spk = (int32_t *)(xn + W), *yof = spk + H * W, *xof = yof + H * W;                 \
        for (int32_t q = 0; q < (int32_t)(H * W); q++) {                                            \
            yof[q] = q / (int32_t)W;                                                                \
            xof[q] = q % (int32_t)W;                                                                \
        }                                                                                           \
        conv_taps(H, kh, sh, ph, dh, Ho, yt, yn);                                                   \
        conv_taps(W, kw, sw, pw, dw, Wo, xt, xn);                                                   \
        for (int64_t r = 0; r < R; r++) {                                                           \
            memset(acc, 0, (size_t)(hw * ga) * sizeof(OTYPE));                                      \
            for (int64_t c = 0; c < C; c++) {                                                       \
                const uint8_t *img = x + (r * C + c) * H * W;                                       \
                const OTYPE *wc = w + c * kh * kw * opp;                                            \
                OTYPE *ac = acc + (c / cpg) * opp;                                                  \
                int32_t ns = 0;                   /* the spiking pixels, listed without branches */ \
                for (int32_t q = 0; q < (int32_t)(H * W); q++) {                                   \
                    spk[ns] = q;                                                                    \
                    ns += img[q] != 0;                                                              \
                }                                                                                   \
                for (int32_t e = 0; e < ns; e++) {                                                  \
                        int64_t y = yof[spk[e]], xx = xof[spk[e]];                                  \
                        uint8_t v = img[spk[e]];                                                    \
                        OTYPE fv = (OTYPE)v;                                                        \
                        for (int64_t a = 0; a < yn[y]; a++) {                                       \
                            int64_t i = yt[2 * (y * kh + a)], oy = yt[2 * (y * kh + a) + 1];        \
                            for (int64_t b = 0; b < xn[xx]; b++) {                                  \
                                int64_t j = xt[2 * (xx * kw + b)], ox = xt[2 * (xx * kw + b) + 1];  \
                                OTYPE *d = ac + (oy * Wo + ox) * ga;                                \
                                const OTYPE *src = wc + (i * kw + j) * opp;                         \
                                if (v == 1)                       /* whole 32-byte vectors */       \
                                    for (int64_t o = 0; o < opp; o += 32 / sizeof(OTYPE))           \
                                        *(VTYPE *)(d + o) += *(const VTYPE *)(src + o);             \
                                else                                                                \
                                    for (int64_t o = 0; o < opp; o += 32 / sizeof(OTYPE))           \
                                        *(VTYPE *)(d + o) += fv * *(const VTYPE *)(src + o);        \
                            }                                                                       \
                        }                                                                           \
                    }                                                                               \
            }                                                                                       \
            OTYPE *o_r = out + r * O * hw;                                                          \
            for (int64_t g = 0; g < O / opg; g++)                                                   \
                for (int64_t o = 0; o < opg; o++)                                                   \
                    for (int64_t p = 0; p < hw; p++)                                                \
                        o_r[(g * opg + o) * hw + p] = acc[p * ga + g * opp + o];                    \
        }                                                                                           \
        free(yt);                                                                                   \
        return 0;                                                                                   \
    }

typedef float f32x8 __attribute__((vector_size(32), aligned(4)));     /* unaligned loads */
typedef double f64x4 __attribute__((vector_size(32), aligned(8)));
CONV_EVENTS(snnc_conv_events_f32, float, f32x8)
CONV_EVENTS(snnc_conv_events_f64, double, f64x4)

/* 1 when every one of the n doubles x is exactly a float32 (its cast back gives it), else 0. */
CLONES int snnc_exact_f32(const double *x, int64_t n)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += (double)(float)x[i] != x[i];
    return bad == 0;
}

/* The interface's version: ckernels.py refuses a library built from another one. */
int snnc_kernels_version(void) { return 8; }
