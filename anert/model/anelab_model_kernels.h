//go:build cgo

// Declarations of kernels.c (see kernels_cgo.go for what each computes).
#include <stdint.h>

void anelab_softmax_causal(float *s, int ld, int rows, int t0, int ncols, float *lse);
void anelab_softmax_causal_bwd(float *p, float *dp, int ld, int rows, int t0, int ncols, float scale, const float *lse);
void anelab_swiglu_fwd(float *gate, const float *h1, const float *h3, long rows, long cols, long ld);
void anelab_swiglu_bwd(float *dh1, float *dh3, const float *dg, const float *h1, const float *h3, long rows, long cols, long ld);
double anelab_softcap_ce(float *z, int rows, int ncols, const int32_t *tgt, float cap, float scale, int train);
void anelab_rmsnorm_fwd(float *out, float *rinv, const float *x, const float *g, int rows, int d, float eps);
void anelab_rmsnorm_bwd(float *dx, float *pg, const float *dout, const float *x, const float *rinv, const float *g, int rows, int d);
void anelab_axpby(float *out, const float *x, const float *y, float a, long n);
void anelab_scale(float *out, const float *x, float a, long n);
void anelab_transpose_rows(float *t, const float *w, long rows, long cols, long r0, long r1);
void anelab_rope(float *x, int rows, int r0, int T, int w, int ld, int hd, const float *cs, const float *sn, float sign);
int anelab_attn_panel(void);
int anelab_attn_select(int width);
int anelab_attn_best(void);
void anelab_attn_fwd(float *a, float *lse, const float *q, const float *k, const float *v, float *ws, int hd, int ld, float scale, int r0, int r1);
void anelab_attn_bwd(float *dq, float *dk, float *dv, const float *da, const float *q, const float *k, const float *v, const float *lse, float *ws1, float *ws2, int T, int hd, int ld, float scale);
