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

/* One step of a fixed-point CUBA LIF population whose u is the step's input (decay_u 4096),
 * reset to zero, with no bound reachable (reference_batched._input_only), over m neurons:
 *   v = trunc(v * cv) + (bias + a * 64 + drive * scale);  s = v > vth (v >= vth: ge);  v = 0 where s.
 * a: the step's synapse sums (A: 0 absent, 1 float32 af, 2 float64 ad), drive: its bias-input
 * values (D: likewise, df / dd); cv, vth: per neuron (CVA, VTA) or one value (cv[0], vth[0]);
 * s: uint8 0/1. A, D, CVA, VTA are constants where it is inlined (one vectorized loop each;
 * inlined into each target clone of snnc_lif_zero, so that the AVX2 one has AVX2 loops).
 * Returns how many drive * scale are not whole numbers (the caller's error). */
static inline __attribute__((always_inline)) int64_t
lif_zero_step(int64_t m, double *restrict v, const float *restrict af, const double *restrict ad,
              const float *restrict df, const double *restrict dd, double scale, const double *restrict bias,
              const double *restrict cv, const double *restrict vth, int ge, uint8_t *restrict s,
              const int A, const int D, const int CVA, const int VTA)
{
    int64_t bad = 0;
    const double c0 = cv[0], th0 = vth[0];
    for (int64_t j = 0; j < m; j++) {
        double add = bias[j];
        if (A == 1) add += (double)af[j] * 64.0;
        if (A == 2) add += ad[j] * 64.0;
        if (D) {
            double d = (D == 1 ? (double)df[j] : dd[j]) * scale;
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

#define LIF_CASE(A, D, CVA, VTA)                                                                   \
    case ((A * 3 + D) * 2 + CVA) * 2 + VTA:                                                        \
        return lif_zero_step(m, v, af, ad, df, dd, scale, bias, cv, vth, ge, s, A, D, CVA, VTA);
#define LIF_CASES_V(A, D, CVA) LIF_CASE(A, D, CVA, 0) LIF_CASE(A, D, CVA, 1)
#define LIF_CASES_C(A, D) LIF_CASES_V(A, D, 0) LIF_CASES_V(A, D, 1)
#define LIF_CASES_D(A) LIF_CASES_C(A, 0) LIF_CASES_C(A, 1) LIF_CASES_C(A, 2)

static inline __attribute__((always_inline)) int64_t
lif_zero_row(int64_t m, double *v, const float *af, const double *ad, const float *df, const double *dd,
             double scale, const double *bias, const double *cv, const double *vth, int ge, uint8_t *s,
             int a_type, int d_type, int cva, int vta)
{
    switch (((a_type * 3 + d_type) * 2 + cva) * 2 + vta) {
        LIF_CASES_D(0) LIF_CASES_D(1) LIF_CASES_D(2)
    }
    return 0;
}

/* k steps of n samples of m neurons: v (n, m); bias (m,); cv, vth (m,) when cva / vta, else
 * (1,); a, drive, s (k, n, m). a_type, d_type: 0 absent, 1 float32, 2 float64. Returns the
 * count of non-integral drives. (One thread: two threads beside BLAS's own, on this project's
 * 2 shared cores, measured slower.) */
CLONES int64_t snnc_lif_zero(int64_t k, int64_t n, int64_t m, double *v, const void *a, int a_type,
                             const void *drive, int d_type, double scale, const double *bias,
                             const double *cv, int cva, const double *vth, int vta, int ge, uint8_t *s)
{
    int64_t bad = 0;
    for (int64_t t = 0; t < k; t++)
        for (int64_t i = 0; i < n; i++) {
            int64_t row = (t * n + i) * m;
            bad += lif_zero_row(m, v + i * m, a_type == 1 ? (const float *)a + row : NULL,
                                a_type == 2 ? (const double *)a + row : NULL,
                                d_type == 1 ? (const float *)drive + row : NULL,
                                d_type == 2 ? (const double *)drive + row : NULL, scale, bias, cv, vth, ge,
                                s + row, a_type, d_type, cva, vta);
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

/* The interface's version: ckernels.py refuses a library built from another one. */
int snnc_kernels_version(void) { return 4; }
