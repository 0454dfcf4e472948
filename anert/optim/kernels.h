//go:build cgo

// Declarations of kernels.c (see kernels_cgo.go).
void anelab_lion(float *w, const float *g, float *m, long n, float lr, float f, float b1, float a1, float b2, float a2);
void anelab_adamw(float *w, const float *g, float *m, float *v, long n, float k, float r, float f, float b1, float a1,
                  float b2, float a2, float eps);
double anelab_scale_sumsq(float *g, long n, float f);
void anelab_scale_slice(float *g, long n, float f);
