// select.h — exact top-k selection of one row (radix select + tie rule + bitonic sort), written once
// for the device (one thread block per row, see topk.cu) and the host (one "thread"), so that the host
// test native/cuda/test/select_host_test.cpp checks the arithmetic and bookkeeping the GPU runs.
//
// The function is a sequence of phases separated by ops.barrier(); the Ops policy supplies the few
// operations that differ: shared-memory atomics and the block-wide ordered count used to take tied
// candidates in index order (warp ballots on the device, a running count on the host).
#ifndef SALT_CUDA_SELECT_H
#define SALT_CUDA_SELECT_H

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "hd.h"

namespace salt {
namespace cuda {

constexpr int kSelectThreads = 256;  ///< threads per row on the device
constexpr int kMaxK = 256;           ///< largest k of the GPU selection

/// Shared state of one row's selection (in __shared__ memory on the device).
struct SelectShared {
  unsigned hist[256];
  uint32_t prefix;
  int remaining;
  int count_above;
  int warp_counts[kSelectThreads / 32];
  float sel_s[kMaxK];
  int32_t sel_i[kMaxK];
};

/// A zero score may come out of a GEMM as -0.0f; make it +0.0f so that equal scores get equal keys.
SALT_HD inline float canonical(float s) { return s == 0.0f ? 0.0f : s; }

/// Order-preserving map from float to uint32 (larger float -> larger key).
SALT_HD inline uint32_t order_key(float s) {
#if defined(__CUDA_ARCH__)
  const uint32_t u = __float_as_uint(s);
#else
  uint32_t u;
  std::memcpy(&u, &s, sizeof u);
#endif
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/// Whether candidate (sa, ia) ranks before (sb, ib): higher score first, then lower index.
SALT_HD inline bool ranks_before(float sa, int32_t ia, float sb, int32_t ib) {
  return sa > sb || (sa == sb && ia < ib);
}

/// Selects the k best of L candidates (1 <= k <= min(L, kMaxK)) and writes them to out_s / out_i in
/// rank order. Candidate j has score s[j] and index ix[j], or idx_base + j when ix is null. Among
/// equal scores, candidates must appear in ascending index order (true for a block of base rows, and
/// for [running top-k | next block's top-k] when blocks ascend): the tied candidates at the k-th place
/// are then taken in candidate order, which is index order.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Ops>
SALT_HD void select_topk_row(const float* s, const int32_t* ix, int32_t idx_base, int L, int k, float* out_s,
                             int32_t* out_i, SelectShared& sh, int tid, int nt, Ops& ops) {
  // 1. Radix select of the k-th largest key, 8 bits at a time from the top.
  uint32_t prefix = 0, mask = 0;
  int remaining = k;  // rank of the wanted key among the candidates matching `prefix` under `mask`
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < 256; b += nt) sh.hist[b] = 0;
    ops.barrier();
    for (int j = tid; j < L; j += nt) {
      const uint32_t key = order_key(canonical(s[j]));
      if ((key & mask) == prefix) ops.add(&sh.hist[(key >> shift) & 255u], 1u);
    }
    ops.barrier();
    if (tid == 0) {
      int above = 0, b = 255;
      for (; b > 0; --b) {
        if (above + static_cast<int>(sh.hist[b]) >= remaining) break;
        above += static_cast<int>(sh.hist[b]);
      }
      sh.prefix = prefix | (static_cast<uint32_t>(b) << shift);
      sh.remaining = remaining - above;
      sh.count_above = 0;
    }
    ops.barrier();
    prefix = sh.prefix;
    remaining = sh.remaining;
    mask |= 255u << shift;
    ops.barrier();
  }
  const uint32_t threshold = prefix;
  const int need_equal = remaining;  // candidates equal to the threshold to take (>= 1)
  const int above_total = k - need_equal;

  // 2a. Every candidate strictly above the threshold (their order is fixed by the sort below).
  for (int j = tid; j < L; j += nt) {
    const float v = canonical(s[j]);
    if (order_key(v) > threshold) {
      const int pos = ops.fetch_add(&sh.count_above, 1);
      sh.sel_s[pos] = v;
      sh.sel_i[pos] = ix ? ix[j] : idx_base + j;
    }
  }
  // 2b. Candidates equal to the threshold: the first `need_equal` in candidate order.
  int taken = 0;
  for (int start = 0; start < L && taken < need_equal; start += nt) {
    const int j = start + tid;
    float v = 0.0f;
    bool eq = false;
    if (j < L) {
      v = canonical(s[j]);
      eq = order_key(v) == threshold;
    }
    int total = 0;
    const int rank = taken + ops.ordered_rank(eq, sh, tid, total);  // ends with a barrier
    if (eq && rank < need_equal) {
      sh.sel_s[above_total + rank] = v;
      sh.sel_i[above_total + rank] = ix ? ix[j] : idx_base + j;
    }
    taken += total;
  }

  // 3. Bitonic sort of the k picks by (score desc, index asc), padded to a power of two.
  int P = 1;
  while (P < k) P <<= 1;
  for (int t = k + tid; t < P; t += nt) {
    sh.sel_s[t] = -INFINITY;
    sh.sel_i[t] = INT_MAX;
  }
  ops.barrier();
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = tid; t < P; t += nt) {
        const int partner = t ^ stride;
        if (partner > t) {
          const bool ascending = (t & size) == 0;
          const bool t_first = ranks_before(sh.sel_s[t], sh.sel_i[t], sh.sel_s[partner], sh.sel_i[partner]);
          if (t_first != ascending) {
            const float ts = sh.sel_s[t];
            sh.sel_s[t] = sh.sel_s[partner];
            sh.sel_s[partner] = ts;
            const int32_t ti = sh.sel_i[t];
            sh.sel_i[t] = sh.sel_i[partner];
            sh.sel_i[partner] = ti;
          }
        }
      }
      ops.barrier();
    }
  }
  for (int t = tid; t < k; t += nt) {
    out_s[t] = sh.sel_s[t];
    out_i[t] = sh.sel_i[t];
  }
}

/// Host policy: one thread, no barriers, plain arithmetic.
struct HostSelectOps {
  void barrier() {}
  void add(unsigned* p, unsigned v) { *p += v; }
  int fetch_add(int* p, int v) {
    const int old = *p;
    *p += v;
    return old;
  }
  int ordered_rank(bool flag, SelectShared&, int, int& total) {
    total = flag ? 1 : 0;
    return 0;
  }
};

}  // namespace cuda
}  // namespace salt

#endif  // SALT_CUDA_SELECT_H
