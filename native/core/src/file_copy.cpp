// Byte-range copies between open files (salt/file_copy.h). Linux: copy_file_range, which copies in
// the kernel (page cache to page cache, or a reflink / server-side copy where the file system has
// one). Where it is refused (another file system, an old kernel, a file system without it) the same
// range is copied with pread and write (or pwrite, at a given output offset) through a 1 MiB
// buffer. Either way the bytes never reach JavaScript. Errors are statuses; a source shorter than
// the range is E_IO. start_writeback asks the kernel to begin writing a range back to disk
// (sync_file_range WRITE), so that a later fdatasync has less left to wait for.
#include <cerrno>
#include <cstring>
#include <vector>

#include "internal.h"
#include "salt/file_copy.h"

#if defined(__linux__) || defined(__APPLE__)
#include <unistd.h>
#endif
#if defined(__linux__)
#include <fcntl.h>
#include <sys/syscall.h>
#endif

namespace salt {
namespace cpu {

#if defined(__linux__) || defined(__APPLE__)
namespace {

salt_status io_status(const char* what, int err) {
  return make_status(SALT_E_IO, "%s failed: %s (%s)", what, std::strerror(err), err == ENOSPC ? "ENOSPC" : "errno");
}

salt_status short_source(int64_t at, int64_t length, int64_t offset) {
  return make_status(SALT_E_IO,
                     "the source file ended at byte %lld while copying %lld bytes from %lld (was it truncated "
                     "while open?)",
                     static_cast<long long>(at), static_cast<long long>(length), static_cast<long long>(offset));
}

// pread/write of [off, off + left) through a buffer: at out_off (pwrite) when >= 0, else at the
// output's file offset, which advances.
salt_status copy_buffered(int fd_in, int64_t off, int fd_out, int64_t out_off, int64_t left, int64_t start,
                          int64_t length) {
  std::vector<char> buf;
  try {
    buf.resize(size_t(1) << 20);
  } catch (...) {
    return make_status(SALT_E_NO_MEMORY, "could not allocate a 1 MiB copy buffer");
  }
  while (left > 0) {
    const size_t want = left < static_cast<int64_t>(buf.size()) ? static_cast<size_t>(left) : buf.size();
    const ssize_t r = pread(fd_in, buf.data(), want, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      return io_status("pread", errno);
    }
    if (r == 0) return short_source(off, length, start);
    size_t done = 0;
    while (done < static_cast<size_t>(r)) {
      const size_t n = static_cast<size_t>(r) - done;
      const ssize_t w = out_off >= 0 ? pwrite(fd_out, buf.data() + done, n, static_cast<off_t>(out_off))
                                     : write(fd_out, buf.data() + done, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return io_status(out_off >= 0 ? "pwrite" : "write", errno);
      }
      done += static_cast<size_t>(w);
      if (out_off >= 0) out_off += w;
    }
    off += r;
    left -= r;
  }
  return ok_status();
}

}  // namespace
#endif

namespace {

salt_status copy_range(const salt_file_copy_args& a) {
#if defined(__linux__) || defined(__APPLE__)
  int64_t off = a.offset_in, left = a.length;
  int64_t out_off = a.offset_out;
#if defined(__linux__) && defined(SYS_copy_file_range)
  bool kernel = true;
  while (left > 0) {
    loff_t in_off = off;
    loff_t at_out = out_off;
    const size_t want = left < (int64_t(1) << 30) ? static_cast<size_t>(left) : (size_t(1) << 30);
    const ssize_t r =
        syscall(SYS_copy_file_range, a.fd_in, &in_off, a.fd_out, out_off >= 0 ? &at_out : nullptr, want, 0u);
    if (r < 0) {
      if (errno == EINTR) continue;
      // Not possible between these files here: copy the rest through a buffer.
      if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF ||
          errno == EPERM) {
        kernel = false;
        break;
      }
      return io_status("copy_file_range", errno);
    }
    if (r == 0) return short_source(off, a.length, a.offset_in);
    off += r;
    left -= r;
    if (out_off >= 0) out_off += r;
  }
  if (kernel) {
    if (a.out_kernel) *a.out_kernel = 1;
    return ok_status();
  }
#endif
  return copy_buffered(a.fd_in, off, a.fd_out, out_off, left, a.offset_in, a.length);
#else
  (void)a;
  return make_status(SALT_E_INTERNAL, "byte-range file copies are not implemented on this platform");
#endif
}

}  // namespace

salt_status copy_file_range_all(const salt_file_copy_args& a) {
  if (a.fd_in < 0 || a.fd_out < 0) return make_status(SALT_E_ARGUMENT, "file descriptors must be >= 0");
  if (a.offset_in < 0 || a.length < 0) return make_status(SALT_E_ARGUMENT, "offset and length must be >= 0");
  if (a.offset_out < -1) return make_status(SALT_E_ARGUMENT, "the output offset must be >= 0, or -1");
  if (a.out_kernel) *a.out_kernel = 0;
  // Where the range lands, for the writeback request (the current offset is read before copying).
  int64_t at = a.offset_out;
#if defined(__linux__)
  if (a.writeback && at < 0) at = lseek(a.fd_out, 0, SEEK_CUR);
#endif
  salt_status st = copy_range(a);
  if (st.code != SALT_OK || !a.writeback || at < 0 || a.length == 0) return st;
  salt_writeback_args wb{a.fd_out, at, a.length};
  return start_writeback(wb);
}

salt_status start_writeback(const salt_writeback_args& a) {
  if (a.fd < 0) return make_status(SALT_E_ARGUMENT, "the file descriptor must be >= 0");
  if (a.offset < 0 || a.length < 0) return make_status(SALT_E_ARGUMENT, "offset and length must be >= 0");
#if defined(__linux__)
  // Best effort: the final fdatasync is what makes the data durable; a file system without
  // sync_file_range (or with nothing to do) is no error.
  for (;;) {
    if (sync_file_range(a.fd, a.offset, a.length, SYNC_FILE_RANGE_WRITE) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EBADF) return io_status("sync_file_range", errno);
    break;
  }
#endif
  return ok_status();
}

}  // namespace cpu
}  // namespace salt
