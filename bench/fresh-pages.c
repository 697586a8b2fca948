// What fresh memory costs on this machine (issue 14): the time to write 1 GiB of newly mapped
// anonymous memory, in 4 KiB pages and with transparent huge pages asked for (MADV_HUGEPAGE), after
// a pause (memory the kernel may have given back to the host meanwhile) and right after another
// round (memory just freed). A folder transfer must fill about 2.4 GB of fresh memory for the 1B
// folder (the source's embedding as Float32 and the new matrix), so this bounds what it can cost.
//
//   gcc -O2 -o /tmp/fresh-pages bench/fresh-pages.c && /tmp/fresh-pages [rounds] [pause seconds]
//
// Prints per round and kind: wall time and system CPU of the memset, and whether huge pages were used
// (AnonHugePages of the process, from /proc/self/smaps_rollup).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double sys_seconds(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

static long anon_huge_kib(void) {
  FILE* f = fopen("/proc/self/smaps_rollup", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

// Maps 1 GiB, optionally asks for huge pages, writes every byte; prints the cost.
static void one(const char* label, int huge) {
  const size_t n = (size_t)1 << 30;
  char* p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
#ifdef MADV_HUGEPAGE
  if (huge && madvise(p, n, MADV_HUGEPAGE) != 0) perror("madvise(MADV_HUGEPAGE)");
#endif
  const double s0 = sys_seconds(), t0 = now();
  memset(p, 1, n);
  const double t1 = now(), s1 = sys_seconds();
  printf("  %-22s %-10s %.3f s wall, %.3f s system, AnonHugePages %ld KiB\n", label, huge ? "huge" : "4 KiB", t1 - t0,
         s1 - s0, anon_huge_kib());
  munmap(p, n);
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? atoi(argv[1]) : 3;
  const int pause = argc > 2 ? atoi(argv[2]) : 4;
  printf("fresh-pages: 1 GiB memset, %d rounds, %d s pause before each cold write\n", rounds, pause);
  for (int r = 0; r < rounds; ++r) {
    printf("round %d\n", r + 1);
    for (int huge = 0; huge <= 1; ++huge) {
      sleep(pause);
      one("after a pause", huge);
      one("right after", huge);
    }
  }
  return 0;
}
