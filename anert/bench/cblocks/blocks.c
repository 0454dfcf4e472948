// blocks: how fast single-threaded GEMMs of the model's block shapes run, one thread alone or T
// threads at once, hot (the same operands every call) or cold (cycling through 12 sets, far more
// than L2 holds), in oneDNN's dnnl_sgemm and in libxsmm's JIT kernels (which read B in place; for a
// y = x·Wᵀ product they are given a copy of W already transposed, not timed). A tool for deciding
// what the step's BLAS blocks could gain, not part of the build (anert/bench/RESULTS.md, "Results (16 cores, 6 Dec
// 2026, 08:55–09:35 UTC)"). Build and run (Debian's libdnnl-dev and libxsmm-dev):
//
//	gcc -O2 anert/bench/cblocks/blocks.c -o blocks -lxsmm -lxsmmnoblas -ldnnl -lgomp -lpthread -lm -ldl
//	./blocks 1 0.15; ./blocks 16 0.15    # threads, seconds per measurement
//
// Shapes are row-major C[m, n] = op(A)[m, k]·op(B)[k, n] (NT: B transposed, as x·Wᵀ; TN: A
// transposed, as a weight gradient dyᵀ·x); libxsmm computes the column-major transpose.
#define _GNU_SOURCE
#include <libxsmm.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct {int ta,tb,m,n,k; const char*name;} shape;
static shape S[]={
   {0,1,128,128,256,"def q fwd NT"},{0,1,256,192,256,"def w1 fwd NT"},{0,1,128,128,768,"def w2 fwd NT"},
   {0,0,128,128,768,"def dX2n NN"},{0,0,256,192,256,"def dGate NN"},
   {1,0,64,64,1024,"def dWq TN"},{1,0,192,64,1024,"def dW1 TN"},
   {0,1,64,64,64,"attn S NT"},{0,0,64,64,64,"attn AV NN"},
   {0,1,128,192,768,"orig q fwd NT"},{0,1,256,256,768,"orig w1 fwd NT"},{0,1,128,192,2048,"orig w2 fwd NT"},
   {0,0,128,192,2048,"orig dX2n NN"},{0,0,256,256,768,"orig dGate NN"},
   {1,0,192,192,512,"orig dWq TN"},{1,0,256,384,512,"orig dW1 TN"},
   {0,0,1024,1024,1024,"1024^3 NN"}};
#define NS ((int)(sizeof(S)/sizeof(S[0])))
enum {SETS=12};
typedef struct {int s, lib, cold; double secs; double gf; pthread_barrier_t*bar; int tid;} arg;
static void* worker(void*p){ arg*a=p; shape h=S[a->s]; omp_set_num_threads(1);
  int lda = h.ta? h.m : h.k, ldb = h.tb? h.k : h.n, ldc=h.n;
  size_t sa=(size_t)h.m*h.k, sb=(size_t)h.k*h.n, sc=(size_t)h.m*h.n;
  int sets = a->cold? SETS:1;
  float *A=aligned_alloc(64,(sa*sets+16)*4),*B=aligned_alloc(64,(sb*sets+16)*4),*Bt=aligned_alloc(64,(sb*sets+16)*4),*C=aligned_alloc(64,(sc*sets+16)*4);
  for (size_t i = 0; i < sa * sets; i++) A[i] = (i % 97) * 0.01f - 0.4f;
  for (size_t i = 0; i < sb * sets; i++) B[i] = (i % 89) * 0.01f - 0.4f;
  for (int x = 0; x < sets; x++) // libxsmm's B for an NT product: each set's B [n, k] transposed to [k, n]
    for (size_t i = 0; i < sb; i++) Bt[sb * x + i] = h.tb ? B[sb * x + (i % h.n) * h.k + i / h.n] : B[sb * x + i];
  memset(C, 0, sc * sets * 4);
  float one=1,zero=0; libxsmm_smmfunction kf=0;
  if(a->lib){ int fl = h.ta? LIBXSMM_GEMM_FLAG_TRANS_B:0; libxsmm_blasint mm=h.n,nn=h.m,kk=h.k, la=h.tb? h.n:ldb, lb=lda, lc=ldc;
    kf=libxsmm_smmdispatch(mm,nn,kk,&la,&lb,&lc,&one,&zero,&fl,NULL); }
  double fl=2.0*h.m*h.n*h.k; long calls=0;
  pthread_barrier_wait(a->bar);
  double t0=now(), t;
  do { for(int i=0;i<8;i++){ int x = calls % sets; calls++;
      if(!a->lib) dnnl_sgemm(h.ta?'T':'N',h.tb?'T':'N',h.m,h.n,h.k,1,A+sa*x,lda,B+sb*x,ldb,0,C+sc*x,ldc);
      else if(kf) kf(Bt+sb*x,A+sa*x,C+sc*x); }
    t=now()-t0; } while(t<a->secs);
  a->gf=fl*calls/t*1e-9; free(A);free(B);free(Bt);free(C); return 0; }
int main(int argc,char**argv){ int T=argc>1?atoi(argv[1]):1; double secs=argc>2?atof(argv[2]):0.3; libxsmm_init();
  printf("%-16s %4s %4s %5s | %8s %8s %8s %8s   GF/s per thread, %d threads\n","shape","m","n","k","dnnl hot","dnnl cold","xsmm hot","xsmm cold",T);
  for(int s=0;s<NS;s++){ double r[4];
    for(int mode=0;mode<4;mode++){ int lib=mode/2, cold=mode%2; pthread_t th[256]; arg a[256]; pthread_barrier_t bar; pthread_barrier_init(&bar,0,T);
      if(lib && S[s].m==1024){r[mode]=0;continue;}
      for(int i=0;i<T;i++){a[i]=(arg){s,lib,cold,secs,0,&bar,i}; pthread_create(&th[i],0,worker,&a[i]);}
      double sum=0; for(int i=0;i<T;i++){pthread_join(th[i],0); sum+=a[i].gf;} r[mode]=sum/T; }
    shape h=S[s]; printf("%-16s %4d %4d %5d | %8.1f %8.1f %8.1f %8.1f\n",h.name,h.m,h.n,h.k,r[0],r[1],r[2],r[3]); fflush(stdout);}
}
