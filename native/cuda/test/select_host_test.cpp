// Host test of native/cuda/select.h: the per-row top-k selection the CUDA top-k runs (radix select,
// tie rule, bitonic sort) executed here with one "thread", plus a replica of topk.cu's block-merge
// loop (base streamed in blocks, running top-k merged with each block's), against a plain sort by
// (score desc, index asc). Exact equality is required. The device-only part (the warp-ballot ordered
// count in topk.cu) is not covered here. Runs without a GPU; built (target salt_cuda_select_test) and
// run by scripts/cuda-compile-check.sh. Prints "select_host_test: N passed, M failed".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "../select.h"

namespace {

using salt::cuda::canonical;
using salt::cuda::HostSelectOps;
using salt::cuda::kMaxK;
using salt::cuda::ranks_before;
using salt::cuda::select_topk_row;
using salt::cuda::SelectShared;

int passed = 0, failed = 0;

// Reference: the k best of (scores, indices) by (canonical score desc, index asc).
void reference(const std::vector<float>& s, const std::vector<int32_t>& idx, int k, std::vector<float>& rs,
               std::vector<int32_t>& ri) {
  std::vector<int> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return ranks_before(canonical(s[a]), idx[a], canonical(s[b]), idx[b]); });
  rs.resize(k);
  ri.resize(k);
  for (int j = 0; j < k; ++j) {
    rs[j] = canonical(s[order[j]]);
    ri[j] = idx[order[j]];
  }
}

bool same(const std::vector<float>& as, const std::vector<int32_t>& ai, const std::vector<float>& bs,
          const std::vector<int32_t>& bi, int k) {
  for (int j = 0; j < k; ++j)
    if (ai[j] != bi[j] || !(as[j] == bs[j])) return false;
  return true;
}

void expect(bool ok, const char* what, int L, int k) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL %s (L = %d, k = %d)\n", what, L, k);
  }
}

// Scores with many exact ties, signed zeros, or continuous values.
std::vector<float> scores(std::mt19937& gen, int L, int kind) {
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> level(-3, 3);
  std::vector<float> s(L);
  for (int j = 0; j < L; ++j) {
    switch (kind) {
      case 0:
        s[j] = nd(gen);
        break;  // continuous
      case 1:
        s[j] = 0.25f * static_cast<float>(level(gen));
        break;  // few levels: many ties
      case 2:
        s[j] = (j % 3 == 0) ? -0.0f : (j % 3 == 1 ? 0.0f : nd(gen));
        break;  // signed zeros
      case 3:
        s[j] = 0.5f;
        break;  // all equal
      default:
        s[j] = std::ldexp(nd(gen), -120);
        break;  // tiny and subnormal-ish
    }
  }
  return s;
}

// One row with implicit indices idx_base + j.
void test_row(std::mt19937& gen, int L, int k, int kind) {
  const std::vector<float> s = scores(gen, L, kind);
  const int32_t base = 1000;
  std::vector<int32_t> idx(L);
  for (int j = 0; j < L; ++j) idx[j] = base + j;
  std::vector<float> rs, gs(k);
  std::vector<int32_t> ri, gi(k);
  reference(s, idx, k, rs, ri);
  SelectShared sh;
  HostSelectOps ops;
  select_topk_row(s.data(), nullptr, base, L, k, gs.data(), gi.data(), sh, 0, 1, ops);
  expect(same(gs, gi, rs, ri, k), "row selection", L, k);
}

// Replica of topk.cu's loop for one query row: blocks of mb base rows, block top-k into
// cand[cur][k..2k) (first block into [0..k)), sentinel padding when a block has fewer than k rows,
// merge of the 2k candidates into cand[1-cur][0..k).
void test_blocks(std::mt19937& gen, int m, int mb, int k, int kind) {
  const std::vector<float> s = scores(gen, m, kind);
  std::vector<int32_t> idx(m);
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> cs[2] = {std::vector<float>(2 * k), std::vector<float>(2 * k)};
  std::vector<int32_t> ci[2] = {std::vector<int32_t>(2 * k), std::vector<int32_t>(2 * k)};
  SelectShared sh;
  HostSelectOps ops;
  int cur = 0;
  for (int b0 = 0; b0 < m; b0 += mb) {
    const int Lb = std::min(mb, m - b0);
    const int kb = std::min(k, Lb);
    const bool first = b0 == 0;
    float* ds = cs[cur].data() + (first ? 0 : k);
    int32_t* di = ci[cur].data() + (first ? 0 : k);
    select_topk_row(s.data() + b0, nullptr, b0, Lb, kb, ds, di, sh, 0, 1, ops);
    for (int j = kb; j < k; ++j) {
      ds[j] = -INFINITY;
      di[j] = INT_MAX;
    }
    if (!first) {
      select_topk_row(cs[cur].data(), ci[cur].data(), 0, 2 * k, k, cs[1 - cur].data(), ci[1 - cur].data(), sh, 0, 1,
                      ops);
      cur = 1 - cur;
    }
  }
  std::vector<float> rs;
  std::vector<int32_t> ri;
  reference(s, idx, k, rs, ri);
  std::vector<float> gs(cs[cur].begin(), cs[cur].begin() + k);
  std::vector<int32_t> gi(ci[cur].begin(), ci[cur].begin() + k);
  expect(same(gs, gi, rs, ri, k), "blocked selection with merges", m, k);
}

}  // namespace

int main() {
  std::mt19937 gen(7);
  for (int kind = 0; kind < 5; ++kind) {
    for (int L : {1, 2, 5, 31, 32, 33, 255, 256, 257, 1000, 4917}) {
      for (int k : {1, 2, 3, 17, 64, 128, 255, 256}) {
        if (k > L || k > kMaxK) continue;
        test_row(gen, L, k, kind);
      }
    }
    for (int m : {1, 7, 100, 1000, 3000}) {
      for (int mb : {1, 3, 64, 300, 5000}) {
        for (int k : {1, 5, 64, 256}) {
          if (k > m) continue;
          test_blocks(gen, m, mb, k, kind);
        }
      }
    }
  }
  std::printf("select_host_test: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
