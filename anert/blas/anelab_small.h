//go:build cgo && amd64

// Declarations of anelab_small.c (see small_amd64.go).
int anelab_small_available(void);
int anelab_small_sgemm(int transA, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
                       long ldb, float beta, float *c, long ldc);
