// The native baseline for `shardtrain bench`: one AdamW step (pytorch convention: decoupled decay before the
// update, bias correction, ε outside the square root) over N float32 parameters, OpenMP over the elements.
// Compiled at bench time: cc -O3 -march=native -fno-math-errno -fopenmp (without -fno-math-errno gcc keeps
// sqrtf scalar so it can set errno, and the loop runs ~4× slower). The per-element formula is the one
// adamw-js.ts and adamw.wat compute with R = 1, no clipping, no AMSGrad.
//
// usage: adamw N STEPS THREADS  → prints one line: "median_seconds min_seconds"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void adamw_step(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, long n,
                       float b1, float b2, float decay, float step_size, float sqrt_scale, float eps) {
  const float omb1 = 1.0f - b1, omb2 = 1.0f - b2;
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + omb1 * gi;
    float vi = b2 * v[i] + omb2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) * sqrt_scale + eps);
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s N STEPS THREADS\n", argv[0]);
    return 2;
  }
  long n = atol(argv[1]);
  int steps = atoi(argv[2]);
  omp_set_num_threads(atoi(argv[3]));
  float *p = aligned_alloc(64, ((n * 4 + 63) / 64) * 64), *m = aligned_alloc(64, ((n * 4 + 63) / 64) * 64);
  float *v = aligned_alloc(64, ((n * 4 + 63) / 64) * 64), *g = aligned_alloc(64, ((n * 4 + 63) / 64) * 64);
  if (!p || !m || !v || !g) {
    fprintf(stderr, "out of memory for %ld params\n", n);
    return 1;
  }
  // First touch in parallel, with the same static schedule as the step (pages land where they are used).
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; i++) {
    p[i] = 0.5f - (float)(i % 1000) * 1e-3f;
    m[i] = 0.0f;
    v[i] = 0.0f;
    g[i] = 1e-2f * (float)((i % 7) - 3);
  }
  const double b1 = 0.9, b2 = 0.999, lr = 1e-3, wd = 0.01, eps = 1e-8;
  double *times = malloc(sizeof(double) * (steps + 2));
  for (int t = 1; t <= steps + 2; t++) {  // two warm-up steps, then `steps` timed ones
    double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    double t0 = omp_get_wtime();
    adamw_step(p, m, v, g, n, (float)b1, (float)b2, (float)(1.0 - lr * wd), (float)(lr / bc1), (float)(1.0 / sqrt(bc2)),
               (float)eps);
    double t1 = omp_get_wtime();
    if (t > 2) times[t - 3] = t1 - t0;
  }
  qsort(times, steps, sizeof(double), cmp);
  // Keep the result observable so the loop cannot be dropped.
  double check = 0;
  for (long i = 0; i < n; i += 4096) check += p[i];
  printf("%.9f %.9f %.6g\n", times[steps / 2], times[0], check);
  return 0;
}
