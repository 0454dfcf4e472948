// instep: one projection of the training step, y = x·op(W) (x [M, K]; W [N, K] for NT, [K, N] for
// NN), on T threads the way the step runs it: each round every thread first rewrites its M/T rows
// of x (the element-wise op before the GEMM), a barrier, then the PM × PN grid's blocks are taken in
// turn from an atomic counter. A tool for deciding how the step's GEMM blocks should get their
// operands, not part of the build (anert/bench/RESULTS.md, "Results (16 cores, 6 Dec 2026, 13:00–14:30 UTC)").
//   mode 0: dnnl_sgemm on each block (for blocks this small oneDNN picks its no-copy kernels,
//           which read op(W) in place)
//   mode 1: W's column blocks packed once a round by oneDNN's pack API (sgemm_pack: exported by
//           libdnnl, declared in no public header), a barrier, then sgemm_compute on each block
//           with its column block packed (copy-based kernels, W not repacked per block)
//   mode 2: as 1, but a column block is packed by the first block that needs it (the others wait)
//   mode 3: every thread its own M×N×K product (the sgemm burst), for the rate per thread
//   mode 4: as 0, but the blocks are dealt by the rows' owner: the grid's blocks in row-major
//           order split into T contiguous ranges, thread t first taking those of range
//           (t + SHIFT) mod T — with SHIFT=0 the blocks whose rows of x it has just written —
//           then taking what is left of the others' ranges in turn (stealing)
//   mode 6: as 0, but each block through an AVX-512 kernel of our own (anelab_own_nn.h; NN only: B read
//           in place, 8×32 tiles of C in registers; -DANELAB_NN_MR=12 -DANELAB_NN_NV=2 etc. for
//           other tiles, -DANELAB_NN_PACK=1 to copy B's panels contiguous first)
//   mode 5: as 0, but each block through oneDNN's matmul primitive (its brgemm kernels; W read
//           from its place with strides, no packed copy), one primitive per block shape, created
//           once; a stream and a scratchpad per thread (scratchpad mode user), memory objects per call
// WRITEW (every mode but 3): each round every thread also rewrites its share of W before the barrier,
// as the step's deferred update writes a layer's matrix (or its transposed copy) just before the
// layer's products read it: 1 plain stores; 2 plain stores, each line then pushed to the shared L3
// (cldemote: a no-op on CPUs without it); 3 non-temporal stores (to memory, past the caches).
// EVICT=MB: each round every thread first sweeps a buffer of that many MB of its own (the step's
// other work between two uses of the same matrix).
// PREF=1: after that, still before the barrier (untimed, as in a wait the step has anyway), every
// thread prefetches all of W into its L2 (prefetcht1 a line), so that its blocks find W near.
// Environment: PIN=1 pins thread t to CPU t; SHIFT (mode 4) moves each thread's range; LIB=mkl runs
// modes 0, 3 and 4 on Intel MKL's cblas_sgemm instead of dnnl_sgemm (libmkl_rt.so, found through
// LD_LIBRARY_PATH, its sequential layer; Debian non-free's libmkl-rt and the libraries it loads).
// It checks mode 1 against mode 0 before timing. Build and run (Debian's libdnnl-dev):
//
//	gcc -O2 anert/bench/cblocks/instep.c -o instep -ldnnl -lgomp -lpthread
//	./instep 16 1024 256 256 16 4 1 0 100; ./instep 16 1024 256 256 16 4 1 5 100   # T M N K PM PN NT mode rounds
#define _GNU_SOURCE
#include <oneapi/dnnl/dnnl.h>
#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "anelab_own_nn.h"
typedef long dim_t;
extern int pk_size(const char*, const char*, const char*, const dim_t*, const dim_t*, const dim_t*, const dim_t*, const dim_t*, size_t*, _Bool*) __asm__("_ZN4dnnl4impl3cpu19sgemm_pack_get_sizeEPKcS3_S3_PKlS5_S5_S5_S5_PmPb");
extern int pk_pack(const char*, const char*, const char*, const dim_t*, const dim_t*, const dim_t*, const dim_t*, const dim_t*, const float*, float*) __asm__("_ZN4dnnl4impl3cpu10sgemm_packEPKcS3_S3_PKlS5_S5_S5_S5_PKfPf");
extern int pk_compute(const char*, const char*, const dim_t*, const dim_t*, const dim_t*, const float*, const dim_t*, const float*, const dim_t*, const float*, float*, const dim_t*) __asm__("_ZN4dnnl4impl3cpu13sgemm_computeEPKcS3_PKlS5_S5_PKfS5_S7_S5_S7_PfS5_");
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int T, M, N, K, PM, PN, TB, MODE, ROUNDS;
static float *X, *W, *Y, **PK; static size_t pksz;
static atomic_int next, packnext; static atomic_int *ready; static atomic_int own[256]; static int SHIFT, PIN;
static pthread_barrier_t bar;
static double tgemm[256]; static int WRITEW, EVICT, PREF;
static int envint(const char *k) { const char *v = getenv(k); return v ? atoi(v) : 0; }
__attribute__((target("avx512f"))) static void writew(int t, int r) { long per = (long)N*K/T/16*16, lo = per*t, hi = t == T-1 ? (long)N*K : lo + per;
  float f = (r & 1) ? 1.0001f : 0.9999f;
  if (WRITEW == 3) { long i = lo; for (; i + 16 <= hi; i += 16) _mm512_stream_ps(W + i, _mm512_mul_ps(_mm512_load_ps(W + i), _mm512_set1_ps(f)));
    for (; i < hi; i++) W[i] *= f;
    _mm_sfence(); return; }
  for (long i = lo; i < hi; i++) W[i] *= f;
  if (WRITEW == 2) for (long i = lo; i < hi; i += 16) __asm__ volatile("cldemote %0" :: "m"(*(char*)(W + i))); }
static void evict(float **buf) { if (!EVICT) return; long n = (long)EVICT << 18; if (!*buf) { *buf = aligned_alloc(64, n*4); memset(*buf, 0, n*4); }
  for (long i = 0; i < n; i += 16) (*buf)[i] += 1; }
// sg is the block GEMM of modes 0, 3 and 4 (row-major): dnnl_sgemm, or MKL's cblas_sgemm with LIB=mkl.
static void (*mkl_sgemm)(int, int, int, dim_t, dim_t, dim_t, float, const float*, dim_t, const float*, dim_t, float, float*, dim_t);
static void sg(char ta_, char tb_, dim_t m, dim_t n, dim_t k, const float *a, dim_t la, const float *b, dim_t lb, float *c, dim_t lc) {
  if (mkl_sgemm) { mkl_sgemm(101, ta_=='T'?112:111, tb_=='T'?112:111, m, n, k, 1, a, la, b, lb, 0, c, lc); return; }
  dnnl_sgemm(ta_, tb_, m, n, k, 1, a, la, b, lb, 0, c, lc); }
static void loadmkl(void) { if (!getenv("LIB") || strcmp(getenv("LIB"), "mkl")) return;
  setenv("MKL_THREADING_LAYER", "SEQUENTIAL", 1);
  void *h = dlopen("libmkl_rt.so", RTLD_NOW | RTLD_GLOBAL); if (!h) { fprintf(stderr, "LIB=mkl: %s\n", dlerror()); exit(1); }
  mkl_sgemm = dlsym(h, "cblas_sgemm"); if (!mkl_sgemm) { fprintf(stderr, "LIB=mkl: no cblas_sgemm\n"); exit(1); }
  void (*vs)(char*, int) = dlsym(h, "MKL_Get_Version_String"); if (vs) { char b[256]; vs(b, sizeof b); fprintf(stderr, "%s\n", b); } }
// Column-major view: Yᵀ[N×M] = A'·B', A' = op(W)ᵀ (the packed operand), B' = xᵀ.
static const char *ta(void){ return TB ? "T" : "N"; }   // W [N][K] row-major (TB) or [K][N] (NN)
static dim_t lda(void){ return TB ? K : N; }
static void pack(int j){ dim_t c0=(dim_t)N*j/PN, c1=(dim_t)N*(j+1)/PN, mm=c1-c0, nn=M/PM, kk=K, la=lda(), lb=K;
  const float *src = TB ? W + c0*K : W + c0;
  if (pk_pack("A", ta(), "N", &mm, &nn, &kk, &la, &lb, src, PK[j])) { fprintf(stderr,"pack failed\n"); exit(1);} }
static void mmblock(dim_t, dim_t, dim_t, dim_t);
static void block(int b){ int bi=b/PN, bj=b%PN; dim_t r0=(dim_t)M*bi/PM, r1=(dim_t)M*(bi+1)/PM, c0=(dim_t)N*bj/PN, c1=(dim_t)N*(bj+1)/PN;
  if (MODE==5) { mmblock(r0, r1, c0, c1); return; }
  if (MODE==6) { anelab_sgemm_nn(r1-r0, c1-c0, K, X+r0*K, K, W+c0, N, Y+r0*N+c0, N, 0); return; }
  if (MODE==0 || MODE==4) { sg('N', TB?'T':'N', r1-r0, c1-c0, K, X+r0*K, K, TB? W+c0*K : W+c0, TB?K:N, Y+r0*N+c0, N); return; }
  if (MODE==2) { while(!atomic_load(&ready[bj])) { int e=0; if (atomic_compare_exchange_strong(&ready[bj], &e, -1)) { pack(bj); atomic_store(&ready[bj], 1); } } 
                 while(atomic_load(&ready[bj])!=1); }
  dim_t mm=c1-c0, nn=r1-r0, kk=K, la=lda(), lb=K, lc=N; float beta=0;
  if (pk_compute("P", "N", &mm, &nn, &kk, PK[bj], &la, X+r0*K, &lb, &beta, Y+r0*N+c0, &lc)) { fprintf(stderr,"compute failed\n"); exit(1);} }
// mode 5: the matmul primitives, by block shape (rows, cols), created on first use.
static pthread_mutex_t mmu = PTHREAD_MUTEX_INITIALIZER;
static struct { dim_t m, n; dnnl_primitive_t p; dnnl_memory_desc_t a, b, c; size_t scratch; } mmc[64]; static int nmmc;
static dnnl_engine_t eng;
static __thread dnnl_stream_t tstream; static __thread void *tscratch; static __thread size_t tscratchsz;
#define CK(x) do { dnnl_status_t s_ = (x); if (s_) { fprintf(stderr, "%s: status %d\n", #x, (int)s_); exit(1); } } while (0)
static int mmprim(dim_t m, dim_t n) {
  pthread_mutex_lock(&mmu);
  for (int i = 0; i < nmmc; i++) if (mmc[i].m == m && mmc[i].n == n) { pthread_mutex_unlock(&mmu); return i; }
  int i = nmmc++;
  dnnl_dims_t ad = {m, K}, as = {K, 1}, bd = {K, n}, bst = {1, K}, bsn = {N, 1}, cd = {m, n}, cs = {N, 1};
  CK(dnnl_memory_desc_init_by_strides(&mmc[i].a, 2, ad, dnnl_f32, as));
  CK(dnnl_memory_desc_init_by_strides(&mmc[i].b, 2, bd, dnnl_f32, TB ? bst : bsn));
  CK(dnnl_memory_desc_init_by_strides(&mmc[i].c, 2, cd, dnnl_f32, cs));
  dnnl_matmul_desc_t d; CK(dnnl_matmul_desc_init(&d, &mmc[i].a, &mmc[i].b, NULL, &mmc[i].c));
  dnnl_primitive_attr_t at; CK(dnnl_primitive_attr_create(&at)); CK(dnnl_primitive_attr_set_scratchpad_mode(at, dnnl_scratchpad_mode_user));
  dnnl_primitive_desc_t pd; CK(dnnl_primitive_desc_create(&pd, &d, at, eng, NULL));
  mmc[i].scratch = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
  CK(dnnl_primitive_create(&mmc[i].p, pd)); mmc[i].m = m; mmc[i].n = n;
  pthread_mutex_unlock(&mmu); return i; }
static void mmblock(dim_t r0, dim_t r1, dim_t c0, dim_t c1) {
  int i = mmprim(r1 - r0, c1 - c0);
  if (!tstream) CK(dnnl_stream_create(&tstream, eng, dnnl_stream_default_flags));
  if (tscratchsz < mmc[i].scratch) { free(tscratch); tscratchsz = mmc[i].scratch; tscratch = aligned_alloc(64, (tscratchsz + 63) / 64 * 64); }
  dnnl_memory_t a, b, c, sp; dnnl_memory_desc_t smd; dnnl_dims_t sd = {(dim_t)tscratchsz};
  CK(dnnl_memory_create(&a, &mmc[i].a, eng, X + r0 * K)); CK(dnnl_memory_create(&b, &mmc[i].b, eng, TB ? W + c0 * K : W + c0));
  CK(dnnl_memory_create(&c, &mmc[i].c, eng, Y + r0 * N + c0));
  CK(dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_u8, dnnl_a)); CK(dnnl_memory_create(&sp, &smd, eng, tscratch));
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, sp}};
  CK(dnnl_primitive_execute(mmc[i].p, tstream, mmc[i].scratch ? 4 : 3, args));
  dnnl_memory_destroy(a); dnnl_memory_destroy(b); dnnl_memory_destroy(c); dnnl_memory_destroy(sp); }
static void pin(int);
static void* burst(void*p){ int t=(int)(long)p; omp_set_num_threads(1); pin(t); float *a=aligned_alloc(64,(size_t)M*K*4), *b=aligned_alloc(64,(size_t)K*N*4), *c=aligned_alloc(64,(size_t)M*N*4);
  for(long i=0;i<(long)M*K;i++) a[i]=(i%97)*0.01f;
  for(long i=0;i<(long)K*N;i++) b[i]=(i%89)*0.01f;
  sg('N','N',M,N,K,a,K,b,N,c,N); pthread_barrier_wait(&bar); double t0=now();
  for(int r=0;r<ROUNDS;r++) sg('N','N',M,N,K,a,K,b,N,c,N);
  tgemm[t]=now()-t0; return 0; }
static void pin(int t){ if(!PIN) return; cpu_set_t c; CPU_ZERO(&c); CPU_SET(t%CPU_SETSIZE,&c); pthread_setaffinity_np(pthread_self(),sizeof c,&c); }
static void* worker(void*p){ int t=(int)(long)p; omp_set_num_threads(1); double tot=0; pin(t); float *ebuf=0;
  for (int r=0;r<ROUNDS+2;r++){
    evict(&ebuf);
    for (long i=(long)M*t/T*K; i<(long)M*(t+1)/T*K; i++) X[i] = X[i]*0.5f + 0.25f*((i+r)%7); // rewrite own rows
    if (WRITEW) writew(t, r);
    if (PREF) { pthread_barrier_wait(&bar); /* W's rewrites done */ for (long i = 0; i < (long)N*K; i += 16) _mm_prefetch((const char*)(W + i), _MM_HINT_T1); }
    pthread_barrier_wait(&bar);
    if (t==0){ atomic_store(&next,0); atomic_store(&packnext,0); for(int j=0;j<PN;j++) atomic_store(&ready[j],0); for(int u=0;u<T;u++) atomic_store(&own[u],0);} 
    pthread_barrier_wait(&bar); double t0=now();
    if (MODE==1){ for(int j; (j=atomic_fetch_add(&packnext,1))<PN;) pack(j); pthread_barrier_wait(&bar); }
    if (MODE==4) { int nb=PM*PN; for (int u=0;u<T;u++) { int q=(t+SHIFT+u)%T, lo=q*nb/T, hi=(q+1)*nb/T;
        for(int b; (b=lo+atomic_fetch_add(&own[q],1))<hi;) block(b); } }
    else for(int b; (b=atomic_fetch_add(&next,1))<PM*PN;) block(b);
    pthread_barrier_wait(&bar); if (r>=2) tot += now()-t0; }
  tgemm[t]=tot; return 0; }
int main(int argc,char**argv){ if(argc<10){fprintf(stderr,"instep T M N K PM PN transB mode rounds\n");return 2;}
  loadmkl(); SHIFT=envint("SHIFT"); PIN=envint("PIN")!=0; WRITEW=envint("WRITEW"); EVICT=envint("EVICT"); PREF=envint("PREF"); T=atoi(argv[1]);M=atoi(argv[2]);N=atoi(argv[3]);K=atoi(argv[4]);PM=atoi(argv[5]);PN=atoi(argv[6]);TB=atoi(argv[7]);MODE=atoi(argv[8]);ROUNDS=atoi(argv[9]);
  X=aligned_alloc(64,(size_t)M*K*4+64); W=aligned_alloc(64,(size_t)N*K*4+64); Y=aligned_alloc(64,(size_t)M*N*4+64);
  for(long i=0;i<(long)M*K;i++) X[i]=(i%97)*0.01f-0.4f;
  for(long i=0;i<(long)N*K;i++) W[i]=(i%89)*0.01f-0.4f;
  PK=calloc(PN,sizeof(float*)); ready=calloc(PN,sizeof(atomic_int)); omp_set_num_threads(1);
  for(int j=0;j<PN;j++){ dim_t mm=(dim_t)N*(j+1)/PN-(dim_t)N*j/PN, nn=M/PM, kk=K, la=lda(), lb=K; size_t sz=0; _Bool p=0;
    if(pk_size("A", ta(), "N", &mm,&nn,&kk,&la,&lb,&sz,&p)){fprintf(stderr,"size failed\n");return 1;} PK[j]=aligned_alloc(4096,(sz+4095)/4096*4096); pksz=sz; }
  // correctness: mode 1 against mode 0 on one thread, round 0 (mode 0 on dnnl_sgemm), then LIB's blocks
  { int m0=MODE; void *mk=mkl_sgemm; mkl_sgemm=0; float *Y0=malloc((size_t)M*N*4); MODE=0; for(int b=0;b<PM*PN;b++) block(b); memcpy(Y0,Y,(size_t)M*N*4);
    MODE=1; for(int j=0;j<PN;j++) pack(j); for(int b=0;b<PM*PN;b++) block(b); double md=0; for(long i=0;i<(long)M*N;i++){double d=Y[i]-Y0[i]; if(d<0)d=-d; if(d>md)md=d;}
    if (md > 1e-3) { fprintf(stderr,"packed result differs by %g\n", md); return 1; }
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0)); MODE=5; memset(Y,0,(size_t)M*N*4); for(int b=0;b<PM*PN;b++) block(b); md=0; for(long i=0;i<(long)M*N;i++){double d=Y[i]-Y0[i]; if(d<0)d=-d; if(d>md)md=d;}
    if (md > 1e-3) { fprintf(stderr,"matmul result differs by %g\n", md); return 1; }
    if (!TB) { MODE=6; memset(Y,0,(size_t)M*N*4); for(int b=0;b<PM*PN;b++) block(b); md=0; for(long i=0;i<(long)M*N;i++){double d=Y[i]-Y0[i]; if(d<0)d=-d; if(d>md)md=d;}
      if (md > 1e-3) { fprintf(stderr,"own kernel's result differs by %g\n", md); return 1; } } else if (m0==6) { fprintf(stderr,"mode 6: NN only\n"); return 2; }
    mkl_sgemm=mk; MODE=0; memset(Y,0,(size_t)M*N*4); for(int b=0;b<PM*PN;b++) block(b); md=0; for(long i=0;i<(long)M*N;i++){double d=Y[i]-Y0[i]; if(d<0)d=-d; if(d>md)md=d;}
    if (md > 1e-3) { fprintf(stderr,"LIB's result differs by %g\n", md); return 1; } MODE=m0; free(Y0); }
  pthread_barrier_init(&bar,0,T); pthread_t th[256];
  for(int t=0;t<T;t++) pthread_create(&th[t],0,MODE==3?burst:worker,(void*)(long)t);
  if (MODE==3) { double mx=0; for(int t=0;t<T;t++){pthread_join(th[t],0); if(tgemm[t]>mx) mx=tgemm[t];}
    printf("T=%d burst%s %dx%dx%d on every thread: %.1f GFLOP/s per thread\n",T,mkl_sgemm?" mkl":"",M,N,K,2.0*M*N*K*ROUNDS/mx*1e-9); return 0; }
  double mx=0; for(int t=0;t<T;t++){pthread_join(th[t],0); if(tgemm[t]>mx) mx=tgemm[t];}
  double fl=2.0*M*N*K*ROUNDS; printf("T=%d %dx%dx%d grid %dx%d %s mode %d%s writew %d evict %d pref %d shift %d pin %d: %.1f GFLOP/s per thread (%.1f us a round; pack %zu KB a column block)\n",T,M,N,K,PM,PN,TB?"NT":"NN",MODE,mkl_sgemm?" mkl":"",WRITEW,EVICT,PREF,SHIFT,PIN,fl/mx/T*1e-9, mx/ROUNDS*1e6, pksz/1024);
  return 0; }
