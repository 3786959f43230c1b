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

typedef float f32x8 __attribute__((vector_size(32), aligned(4)));     /* unaligned loads */
typedef double f64x4 __attribute__((vector_size(32), aligned(8)));

/* Event-driven convolution of uint8 spike counts x (R, C, H, W) into out (R, O, Ho, Wo), O =
 * groups * opg: out[r, g * opg + o, oy, ox] = sum of x[r, c, y, xx] * w[c, i, j, o] over the
 * inputs of group g = c / cpg with y = oy * sh + i * dh - ph, xx = ox * sw + j * dw - pw. w: (C,
 * kh, kw, opp), each input channel's weights to its group's opg outputs, contiguous in o,
 * zero-padded to opp (a multiple of the 32-byte vector VTYPE: whole vectors). Output-stationary:
 * per row, the spiking channels of each input pixel are listed (per group: cnt, chan, val; the
 * scan skips all-zero 8-pixel words); then each output pixel sums, for every kernel tap that
 * reaches an input pixel, the weights of that pixel's spiking channels into NV vector registers
 * (a block of up to 8 vectors of its group's outputs) and stores them once. Integers below the
 * exact bound of OTYPE (the caller's kernel choice): every order of the sums gives the same
 * value. Returns 0, or -1 when out of memory for the lists. */
#define CONV_EVENTS_PIXEL(NAME, OTYPE, VTYPE)                                                           \
    static inline __attribute__((always_inline)) void NAME(                                         \
        const int32_t *cnt, const int32_t *chan, const uint8_t *val, int64_t cpg, int64_t H,        \
        int64_t W, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,          \
        int64_t dh, int64_t dw, int64_t oy, int64_t ox, const OTYPE *w, int64_t opp, int64_t ob,    \
        int64_t nout, OTYPE *o_px, int64_t hw, const int NV)                                        \
    {                                                                                               \
        const int L = 32 / sizeof(OTYPE);                                                           \
        VTYPE a[8];                                                                                 \
        for (int v = 0; v < NV; v++) a[v] = (VTYPE){0};                                             \
        for (int64_t i = 0; i < kh; i++) {                                                          \
            int64_t y = oy * sh + i * dh - ph;                                                      \
            if (y < 0 || y >= H) continue;                                                          \
            for (int64_t j = 0; j < kw; j++) {                                                      \
                int64_t xx = ox * sw + j * dw - pw;                                                 \
                if (xx < 0 || xx >= W) continue;                                                    \
                int64_t q = y * W + xx, n = cnt[q];                                                 \
                const int32_t *cl = chan + q * cpg;                                                 \
                const uint8_t *vl = val + q * cpg;                                                  \
                const OTYPE *wij = w + (i * kw + j) * opp + ob;                                     \
                for (int64_t e = 0; e < n; e++) {                                                   \
                    const OTYPE *src = wij + (int64_t)cl[e] * kh * kw * opp;                        \
                    if (vl[e] == 1)                                                                 \
                        for (int v = 0; v < NV; v++) a[v] += *(const VTYPE *)(src + v * L);         \
                    else {                                                                          \
                        OTYPE fv = (OTYPE)vl[e];                                                    \
                        for (int v = 0; v < NV; v++) a[v] += fv * *(const VTYPE *)(src + v * L);    \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        for (int v = 0; v < NV; v++)                                                                \
            for (int l = 0; l < L; l++) {                                                           \
                int64_t o = v * L + l;                                                              \
                if (o < nout) o_px[o * hw] = a[v][l];                                               \
            }                                                                                       \
    }

/* One output pixel of CONV_EVENTS by PIXEL with NV vectors (a compile-time constant). */
#define CONV_EVENTS_NV(PIXEL, NV) \
    PIXEL(cg, chg, vg, cpg, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oy, ox, w, opp, ob, nout, o_px, hw, NV)
#define CONV_EVENTS(NAME, PIXEL, OTYPE)                                                                 \
    CLONES int NAME(const uint8_t *x, int64_t R, int64_t C, int64_t H, int64_t W, int64_t kh,      \
                    int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,        \
                    int64_t dw, int64_t Ho, int64_t Wo, int64_t cpg, int64_t opg, int64_t opp,     \
                    int64_t O, const OTYPE *w, OTYPE *out)                                          \
    {                                                                                               \
        const int64_t L = 32 / sizeof(OTYPE), HW = H * W, hw = Ho * Wo, G = C / cpg;              \
        int32_t *cnt = malloc(sizeof(int32_t) * (size_t)(G * HW + C * HW + HW));                  \
        uint8_t *val = malloc((size_t)(C * HW));                                                    \
        if (!cnt || !val) {                                                                         \
            free(cnt);                                                                              \
            free(val);                                                                              \
            return -1;                                                                              \
        }                                                                                           \
        int32_t *chan = cnt + G * HW, *spk = chan + C * HW;                                         \
        for (int64_t r = 0; r < R; r++) {                                                           \
            memset(cnt, 0, sizeof(int32_t) * (size_t)(G * HW));                                     \
            for (int64_t c = 0; c < C; c++) {      /* each pixel's spiking channels, per group */   \
                const uint8_t *img = x + (r * C + c) * HW;                                          \
                int64_t g = c / cpg;                                                                \
                int32_t ns = 0;              /* 8 pixels at a time: all-zero words skipped */     \
                for (int32_t q = 0; q < (int32_t)HW; q += 8) {                                      \
                    int32_t end = q + 8 < (int32_t)HW ? q + 8 : (int32_t)HW;                        \
                    uint64_t word = 1;                                                              \
                    if (end - q == 8)                                                               \
                        memcpy(&word, img + q, 8);                                                  \
                    if (!word) continue;                                                            \
                    for (int32_t b = q; b < end; b++) {                                             \
                        spk[ns] = b;                                                                \
                        ns += img[b] != 0;                                                          \
                    }                                                                               \
                }                                                                                   \
                for (int32_t e = 0; e < ns; e++) {                                                  \
                    int64_t idx = g * HW + spk[e], k = cnt[idx]++;                                  \
                    chan[idx * cpg + k] = (int32_t)c;                                               \
                    val[idx * cpg + k] = img[spk[e]];                                               \
                }                                                                                   \
            }                                                                                       \
            for (int64_t g = 0; g < G; g++)                                                         \
                for (int64_t ob = 0; ob < opg; ob += 8 * L) {                                       \
                    int64_t nout = opg - ob < 8 * L ? opg - ob : 8 * L;                             \
                    int nv = (int)((nout + L - 1) / L);                                             \
                    const int32_t *cg = cnt + g * HW, *chg = chan + g * HW * cpg;                   \
                    const uint8_t *vg = val + g * HW * cpg;                                         \
                    OTYPE *o_g = out + (r * O + g * opg + ob) * hw;                                 \
                    for (int64_t oy = 0; oy < Ho; oy++)                                             \
                        for (int64_t ox = 0; ox < Wo; ox++) {                                       \
                            OTYPE *o_px = o_g + oy * Wo + ox;                                       \
                            switch (nv) {                                                           \
                            case 1: CONV_EVENTS_NV(PIXEL, 1); break;                                \
                            case 2: CONV_EVENTS_NV(PIXEL, 2); break;                                \
                            case 3: CONV_EVENTS_NV(PIXEL, 3); break;                                \
                            case 4: CONV_EVENTS_NV(PIXEL, 4); break;                                \
                            case 5: CONV_EVENTS_NV(PIXEL, 5); break;                                \
                            case 6: CONV_EVENTS_NV(PIXEL, 6); break;                                \
                            case 7: CONV_EVENTS_NV(PIXEL, 7); break;                                \
                            default: CONV_EVENTS_NV(PIXEL, 8); break;                               \
                            }                                                                       \
                        }                                                                           \
                }                                                                                   \
        }                                                                                           \
        free(cnt);                                                                                  \
        free(val);                                                                                  \
        return 0;                                                                                   \
    }

CONV_EVENTS_PIXEL(conv_events_pixel_f32, float, f32x8)
CONV_EVENTS_PIXEL(conv_events_pixel_f64, double, f64x4)
CONV_EVENTS(snnc_conv_events_f32, conv_events_pixel_f32, float)
CONV_EVENTS(snnc_conv_events_f64, conv_events_pixel_f64, double)

/* 1 when every one of the n doubles x is exactly a float32 (its cast back gives it), else 0. */
CLONES int snnc_exact_f32(const double *x, int64_t n)
{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += (double)(float)x[i] != x[i];
    return bad == 0;
}

/* The interface's version: ckernels.py refuses a library built from another one. */
int snnc_kernels_version(void) { return 9; }
