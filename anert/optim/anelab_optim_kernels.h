//go:build cgo

// Declarations of kernels.c (see kernels_cgo.go).
void anelab_lion(float *w, float *g, float *m, long n, float u, float cl, float lr, float f, float b1, float a1,
                 float b2, float a2, int zero);
void anelab_adamw(float *w, float *g, float *m, float *v, long n, float u, float cl, float k, float r, float f,
                  float b1, float a1, float b2, float a2, float eps, int zero);
double anelab_sumsq_scaled(const float *g, long n, float u);
void anelab_scale_slice(float *g, long n, float f);
