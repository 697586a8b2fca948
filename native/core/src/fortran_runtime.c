/* The two gfortran run-time entry points that OpenBLAS's bundled LAPACK references. Defining them
 * here lets the addon link OpenBLAS statically without libgfortran: Debian's libgfortran.a cannot
 * go into a shared object (it uses local-exec TLS), and a dynamic libgfortran would be one more
 * run-time dependency for prebuilds. Both are hidden, so they never interpose on a libgfortran
 * that another module of the process loads. ABI as in GCC >= 8 (string lengths are size_t). */
#include <string.h>
#include <sys/resource.h>

#define SALT_HIDDEN __attribute__((visibility("hidden")))

/* Fortran string concatenation dest = s1 // s2, truncated or blank-padded to destlen. */
SALT_HIDDEN void _gfortran_concat_string(size_t destlen, char* dest, size_t len1, const char* s1, size_t len2,
                                         const char* s2) {
  if (len1 >= destlen) {
    memcpy(dest, s1, destlen);
    return;
  }
  memcpy(dest, s1, len1);
  dest += len1;
  destlen -= len1;
  if (len2 >= destlen) {
    memcpy(dest, s2, destlen);
    return;
  }
  memcpy(dest, s2, len2);
  memset(dest + len2, ' ', destlen - len2);
}

/* ETIME(TARRAY): user and system CPU seconds into TARRAY(1:2), their sum as the result. Only LAPACK's
 * SECOND/DSECND timers use it. The argument is an array descriptor whose first member is the data
 * pointer; LAPACK passes a contiguous local REAL TARRAY(2). */
struct salt_gfc_array_r4 {
  float* base_addr;
};

SALT_HIDDEN float _gfortran_etime(struct salt_gfc_array_r4* t) {
  struct rusage ru;
  float user = 0, sys = 0;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    user = (float)ru.ru_utime.tv_sec + 1e-6f * (float)ru.ru_utime.tv_usec;
    sys = (float)ru.ru_stime.tv_sec + 1e-6f * (float)ru.ru_stime.tv_usec;
  }
  if (t && t->base_addr) {
    t->base_addr[0] = user;
    t->base_addr[1] = sys;
  }
  return user + sys;
}
