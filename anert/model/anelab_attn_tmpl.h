//go:build cgo

// The fused causal attention kernels' body, included by kernels.c once per vector width: VW floats
// a vector, NQ vectors a panel of queries (QW = VW·NQ queries, the lanes of the kernels' score
// tiles), NH vectors a tile of head columns, SFX the instance's suffix. They compute what
// attention.go's attnRowsForward and attnHeadBackward compute with BLAS (the formulas are there;
// the tests compare the two), but per panel of QW queries with the scores kept transposed, Sᵀ
// [keys × QW]: the softmax then runs across vectors, one query a lane, and all five products of a
// panel are register-tiled loops over data the panel has just touched — no BLAS call, no T×T
// scratch. Included by kernels.c only: its names are static, suffixed, and #undef'd at the end.

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define QW (VW * NQ)
#define MR 6 // rows of a register tile
_Static_assert(MR == 6, "BY_HEIGHT runs the tails of MR = 6: heights 1 to 5");
#define VT CAT(attn_vec, SFX)
#define INLINE static inline __attribute__((always_inline))

// BY_HEIGHT(h, TILE) runs TILE(1) … TILE(5) for h = 1 … 5 (a tile's last rows, fewer than MR): a
// constant height each, so that every tile is unrolled.
#ifndef BY_HEIGHT
#define BY_HEIGHT(h, TILE)                                                                                             \
	switch (h) {                                                                                                   \
	case 1: TILE(1); break;                                                                                        \
	case 2: TILE(2); break;                                                                                        \
	case 3: TILE(3); break;                                                                                        \
	case 4: TILE(4); break;                                                                                        \
	default: TILE(5);                                                                                              \
	}
#endif

typedef float VT __attribute__((vector_size(VW * 4)));

INLINE VT CAT(vload, SFX)(const float *p) {
	VT v;
	memcpy(&v, p, sizeof v);
	return v;
}

INLINE void CAT(vstore, SFX)(float *p, VT v) { memcpy(p, &v, sizeof v); }

// bcast is x in every lane (x − 0 is x for every x, −0 included, so no add survives).
INLINE VT CAT(bcast, SFX)(float x) { return x - (VT){0}; }

// pdot_tile: out[m·QW + 0:QW] = Σ_d x[m·ldx + d] · yt[d·QW + 0:QW] for the mr rows m < mr, but
// only from vector u0 on: the vectors before it (lanes before u0·VW) are stored as 0.
INLINE void CAT(pdot_tile, SFX)(float *out, const float *x, long ldx, const float *yt, int hd, const int mr,
                               const int u0) {
	VT acc[MR][NQ];
	for (int m = 0; m < mr; m++)
		for (int u = u0; u < NQ; u++) acc[m][u] = (VT){0};
	for (int d = 0; d < hd; d++) {
		VT y[NQ];
		for (int u = u0; u < NQ; u++) y[u] = CAT(vload, SFX)(yt + (long)d * QW + u * VW);
		for (int m = 0; m < mr; m++) {
			VT b = CAT(bcast, SFX)(x[m * ldx + d]);
			for (int u = u0; u < NQ; u++) acc[m][u] += b * y[u];
		}
	}
	for (int m = 0; m < mr; m++) {
		for (int u = 0; u < u0; u++) CAT(vstore, SFX)(out + (long)m * QW + u * VW, (VT){0});
		for (int u = u0; u < NQ; u++) CAT(vstore, SFX)(out + (long)m * QW + u * VW, acc[m][u]);
	}
}

// pdot_rows runs pdot_tile with u0 as a constant (NQ ≤ 4), so that each case's tile is unrolled.
INLINE void CAT(pdot_rows, SFX)(float *out, const float *x, long ldx, const float *yt, int hd, const int mr, int u0) {
	switch (u0) {
	case 0:
		CAT(pdot_tile, SFX)(out, x, ldx, yt, hd, mr, 0);
		break;
#if NQ > 1
	case 1:
		CAT(pdot_tile, SFX)(out, x, ldx, yt, hd, mr, 1);
		break;
#endif
#if NQ > 2
	case 2:
		CAT(pdot_tile, SFX)(out, x, ldx, yt, hd, mr, 2);
		break;
#endif
#if NQ > 3
	default:
		CAT(pdot_tile, SFX)(out, x, ldx, yt, hd, mr, 3);
#endif
	}
}

// pdot: out[j·QW + c] = Σ_d x[j·ldx + d] · yt[d·QW + c], rows j < n of x against a panel yt [hd × QW]
// of queries i0 + c, where only keys j ≤ i0 + c count: a tile of rows from j0 > i0 on skips (and
// zeroes) its vectors whose lanes all lie before j0 − i0, the masked triangle's whole vectors.
static void CAT(pdot, SFX)(float *out, const float *x, long ldx, const float *yt, int n, int hd, int i0) {
	int j = 0;
	for (; j + MR <= n; j += MR) {
		int u0 = j > i0 ? (j - i0) / VW : 0;
		CAT(pdot_rows, SFX)(out + (long)j * QW, x + j * ldx, ldx, yt, hd, MR, u0);
	}
	if (j < n) { // the last n − j < MR rows as one tile
		int u0 = j > i0 ? (j - i0) / VW : 0;
#define PDOT_TAIL(h) CAT(pdot_rows, SFX)(out + (long)j * QW, x + j * ldx, ldx, yt, hd, h, u0)
		BY_HEIGHT(n - j, PDOT_TAIL);
#undef PDOT_TAIL
	}
}

// brow_tile: out[m·ldo + 0:nh·VW] (+)= Σ_{k<K} p[k·pk + m·pm] · z[k·ldz + 0:nh·VW], m < mr.
INLINE void CAT(brow_tile, SFX)(float *out, long ldo, const float *p, long pk, long pm, const float *z, long ldz, int K,
                               int add, const int mr, const int nh) {
	VT acc[MR][NH];
	for (int m = 0; m < mr; m++)
		for (int h = 0; h < nh; h++) acc[m][h] = add ? CAT(vload, SFX)(out + m * ldo + h * VW) : (VT){0};
	for (int k = 0; k < K; k++) {
		VT zv[NH];
		for (int h = 0; h < nh; h++) zv[h] = CAT(vload, SFX)(z + k * ldz + h * VW);
		const float *pp = p + k * pk;
		for (int m = 0; m < mr; m++) {
			VT b = CAT(bcast, SFX)(pp[m * pm]);
			for (int h = 0; h < nh; h++) acc[m][h] += b * zv[h];
		}
	}
	for (int m = 0; m < mr; m++)
		for (int h = 0; h < nh; h++) CAT(vstore, SFX)(out + m * ldo + h * VW, acc[m][h]);
}

// brows: out[r·ldo + 0:hd] (+ with add)= Σ_k p[k·pk + r·pm] · z[k·ldz + 0:hd] for r < M: a
// product whose left operand is read an element at a time (broadcast) with any strides, so that
// the same loop takes P (pk = QW, pm = 1) and Pᵀ (pk = 1, pm = QW). hd is a multiple of VW. The
// causal mask (the terms it skips are 0 in p) trims each tile's range of k: with ROWS_QUERIES, row r
// is query i0 + r and sees keys k ≤ i0 + r; with ROWS_KEYS, row r is key r, seen by the panel's
// queries k ≥ r − i0; with ALL_K, every k < K.
#ifndef ANELAB_ATTN_MODES
#define ANELAB_ATTN_MODES
enum { ALL_K, ROWS_QUERIES, ROWS_KEYS };
#endif

INLINE void CAT(brow_span, SFX)(float *out, long ldo, const float *p, long pk, long pm, const float *z, long ldz, int r,
                               int K, int add, int mode, int i0, const int mr, const int nh) {
	int lo = mode == ROWS_KEYS && r > i0 ? r - i0 : 0;
	int hi = mode == ROWS_QUERIES && i0 + r + mr < K ? i0 + r + mr : K;
	CAT(brow_tile, SFX)(out + r * ldo, ldo, p + r * pm + lo * pk, pk, pm, z + lo * ldz, ldz, hi - lo, add, mr, nh);
}

// brow_cols runs the rows of one band of nh vectors of columns: tiles of MR rows, then the last
// M mod MR rows as one tile (BY_HEIGHT).
INLINE void CAT(brow_cols, SFX)(float *out, long ldo, const float *p, long pk, long pm, const float *z, long ldz, int M,
                               int K, int add, int mode, int i0, const int nh) {
	int r = 0;
	for (; r + MR <= M; r += MR) CAT(brow_span, SFX)(out, ldo, p, pk, pm, z, ldz, r, K, add, mode, i0, MR, nh);
	if (r < M) {
#define BROW_TAIL(h) CAT(brow_span, SFX)(out, ldo, p, pk, pm, z, ldz, r, K, add, mode, i0, h, nh)
		BY_HEIGHT(M - r, BROW_TAIL);
#undef BROW_TAIL
	}
}

static void CAT(brows, SFX)(float *out, long ldo, const float *p, long pk, long pm, const float *z, long ldz, int M,
                            int K, int hd, int add, int mode, int i0) {
	int c = 0;
	for (; c + NH * VW <= hd; c += NH * VW) CAT(brow_cols, SFX)(out + c, ldo, p, pk, pm, z + c, ldz, M, K, add, mode, i0, NH);
	for (; c < hd; c += VW) CAT(brow_cols, SFX)(out + c, ldo, p, pk, pm, z + c, ldz, M, K, add, mode, i0, 1);
}

// panelT: yt[d·QW + c] = a·x[(i0 + c)·ld + d] for the nv rows c < nv of the panel, 0 for c ≥ nv.
// Tiles of 16×16 floats, read row by row and written column by column, so that both sides stay
// in a few cache lines.
static void CAT(panelT, SFX)(float *yt, const float *x, long ld, int i0, int nv, int hd, float a) {
	for (int c0 = 0; c0 < QW; c0 += 16)
		for (int d0 = 0; d0 < hd; d0 += 16)
			for (int c = c0; c < c0 + 16; c++) {
				const float *row = x + (long)(i0 + c) * ld + d0;
				float *col = yt + (long)d0 * QW + c;
				if (c < nv)
					for (int d = 0; d < 16; d++) col[d * QW] = a * row[d];
				else
					for (int d = 0; d < 16; d++) col[d * QW] = 0.0f;
			}
}

// attn_fwd: attnRowsForward for the queries [r0, r1) of one head: a [rows at ld], lse [T] (entries
// r0..r1−1 written), q, k, v strided views; ws holds QW·(hd + r1) floats.
static void CAT(attn_fwd, SFX)(float *a, float *lse, const float *q, const float *k, const float *v, float *ws, int hd,
                               long ld, float scale, int r0, int r1) {
	float *qt = ws, *st = ws + (long)hd * QW;
	for (int i0 = r0; i0 < r1; i0 += QW) {
		int nv = r1 - i0 < QW ? r1 - i0 : QW, nk = i0 + nv; // the panel's queries see keys [0, nk)
		CAT(panelT, SFX)(qt, q, ld, i0, nv, hd, scale);
		CAT(pdot, SFX)(st, k, ld, qt, nk, hd, i0); // Sᵀ = K·(scale·Q)ᵀ
		// Keys before i0 are seen by every query of the panel: no mask there.
		float mx[QW], sum[QW];
		for (int c = 0; c < QW; c++) mx[c] = -INFINITY, sum[c] = 0;
		for (int j = 0; j < i0; j++) {
			const float *s = st + (long)j * QW;
			SIMD
			for (int c = 0; c < QW; c++) mx[c] = s[c] > mx[c] ? s[c] : mx[c];
		}
		for (int j = i0; j < nk; j++) {
			const float *s = st + (long)j * QW;
			SIMD
			for (int c = 0; c < QW; c++) {
				float x = j <= i0 + c ? s[c] : -INFINITY;
				mx[c] = x > mx[c] ? x : mx[c];
			}
		}
		for (int j = 0; j < i0; j++) {
			float *s = st + (long)j * QW;
			SIMD
			for (int c = 0; c < QW; c++) {
				float e = ex(s[c] - mx[c]);
				s[c] = e;
				sum[c] += e;
			}
		}
		for (int j = i0; j < nk; j++) {
			float *s = st + (long)j * QW;
			SIMD
			for (int c = 0; c < QW; c++) {
				float e = j <= i0 + c ? ex(s[c] - mx[c]) : 0.0f;
				s[c] = e;
				sum[c] += e;
			}
		}
		// A = (Σ_j e_j·V_j) / Σ_j e_j: the rows normalised after the product, not P before it.
		CAT(brows, SFX)(a + (long)i0 * ld, ld, st, QW, 1, v, ld, nv, nk, hd, 0, ROWS_QUERIES, i0);
		for (int c = 0; c < nv; c++) {
			float inv = 1.0f / sum[c], *row = a + (long)(i0 + c) * ld;
			SIMD
			for (int d = 0; d < hd; d++) row[d] *= inv;
			lse[i0 + c] = mx[c] + (float)log((double)sum[c]);
		}
	}
}

// attn_bwd: attnHeadBackward for one whole head of T queries: dq, dk, dv overwritten; ws1 and ws2
// hold QW·(hd + T) floats each.
static void CAT(attn_bwd, SFX)(float *dq, float *dk, float *dv, const float *da, const float *q, const float *k,
                               const float *v, const float *lse, float *ws1, float *ws2, int T, int hd, long ld,
                               float scale) {
	float *qt = ws1, *st = ws1 + (long)hd * QW, *dat = ws2, *dpt = ws2 + (long)hd * QW;
	for (int t = 0; t < T; t++) {
		memset(dk + t * ld, 0, (size_t)hd * sizeof(float));
		memset(dv + t * ld, 0, (size_t)hd * sizeof(float));
	}
	for (int i0 = 0; i0 < T; i0 += QW) {
		int nv = T - i0 < QW ? T - i0 : QW, nk = i0 + nv;
		CAT(panelT, SFX)(qt, q, ld, i0, nv, hd, scale);
		CAT(panelT, SFX)(dat, da, ld, i0, nv, hd, 1.0f);
		CAT(pdot, SFX)(st, k, ld, qt, nk, hd, i0);   // Sᵀ
		CAT(pdot, SFX)(dpt, v, ld, dat, nk, hd, i0); // dPᵀ = V·dAᵀ
		float l[QW], dot[QW];
		for (int c = 0; c < QW; c++) l[c] = c < nv ? lse[i0 + c] : 0.0f, dot[c] = 0;
		for (int j = 0; j < i0; j++) { // keys every query of the panel sees
			float *s = st + (long)j * QW;
			const float *g = dpt + (long)j * QW;
			SIMD
			for (int c = 0; c < QW; c++) {
				float p = ex(s[c] - l[c]);
				s[c] = p;
				dot[c] += p * g[c];
			}
		}
		for (int j = i0; j < nk; j++) {
			float *s = st + (long)j * QW;
			const float *g = dpt + (long)j * QW;
			SIMD
			for (int c = 0; c < QW; c++) {
				float p = j <= i0 + c ? ex(s[c] - l[c]) : 0.0f;
				s[c] = p;
				dot[c] += p * g[c];
			}
		}
		for (int j = 0; j < nk; j++) {
			const float *s = st + (long)j * QW;
			float *g = dpt + (long)j * QW;
			SIMD
			for (int c = 0; c < QW; c++) g[c] = scale * s[c] * (g[c] - dot[c]); // dSᵀ
		}
		// dV[j] += Σ_c P[c][j]·dA[c], dK[j] += Σ_c dS[c][j]·Q[c] over the panel's nv queries; dQ[c] =
		// Σ_j dS[c][j]·K[j] over its nk keys.
		CAT(brows, SFX)(dv, ld, st, 1, QW, da + (long)i0 * ld, ld, nk, nv, hd, 1, ROWS_KEYS, i0);
		CAT(brows, SFX)(dk, ld, dpt, 1, QW, q + (long)i0 * ld, ld, nk, nv, hd, 1, ROWS_KEYS, i0);
		CAT(brows, SFX)(dq + (long)i0 * ld, ld, dpt, QW, 1, k, ld, nv, nk, hd, 0, ROWS_QUERIES, i0);
	}
}

#undef CAT2
#undef CAT
#undef QW
#undef MR
#undef VT
#undef INLINE
