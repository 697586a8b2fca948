// Byte-range copies between open files (salt/file_copy.h). Linux: copy_file_range, which copies in
// the kernel (page cache to page cache, or a reflink / server-side copy where the file system has
// one). Where it is refused (another file system, an old kernel, a file system without it) the same
// range is copied with pread and write (or pwrite, at a given output offset) through a 1 MiB
// buffer. Either way the bytes never reach JavaScript. Errors are statuses; a source shorter than
// the range is E_IO. start_writeback asks the kernel to begin writing a range back to disk
// (sync_file_range WRITE), so that a later fdatasync has less left to wait for. write_direct writes
// the whole 4 KiB blocks of a range with O_DIRECT (no page cache: on the machines measured, filling
// fresh page-cache pages cost more than the disk write itself), the partial blocks at its ends
// through the page cache.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "internal.h"
#include "salt/file_copy.h"

#if defined(__linux__) || defined(__APPLE__)
#include <unistd.h>
#endif
#if defined(__linux__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

namespace {

constexpr int64_t kBlock = 4096;              // O_DIRECT alignment of offsets, lengths and buffers
constexpr int64_t kChunk = int64_t(8) << 20;  // bytes per direct write

int64_t kind_size(int32_t kind) { return kind == SALT_WRITE_F32 ? 4 : 2; }

// Buffers of kChunk bytes are kept for the next write_direct (at most kPooled of them, 32 MiB):
// a transfer makes dozens of calls, and with glibc returning every large free to the system (the
// CLI's fix_malloc_mmap_threshold) each call's fresh 16 MiB cost ~4,000 page faults again.
constexpr size_t kPooled = 4;
std::mutex pool_mutex;
std::vector<char*>& pool() {
  static std::vector<char*>* kept = new std::vector<char*>();  // never destroyed: no exit-order issue
  return *kept;
}

struct FreeAligned {
  bool pooled = false;
  void operator()(char* p) const {
    if (pooled) {
      std::lock_guard<std::mutex> lock(pool_mutex);
      if (pool().size() < kPooled) {
        pool().push_back(p);
        return;
      }
    }
    std::free(p);
  }
};
using AlignedBuffer = std::unique_ptr<char, FreeAligned>;

AlignedBuffer aligned_buffer(size_t bytes) {
  const bool pooled = bytes == static_cast<size_t>(kChunk);
  if (pooled) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    if (!pool().empty()) {
      char* p = pool().back();
      pool().pop_back();
      return AlignedBuffer(p, FreeAligned{true});
    }
  }
  void* p = nullptr;
  if (posix_memalign(&p, static_cast<size_t>(kBlock), bytes) != 0) return AlignedBuffer();
  return AlignedBuffer(static_cast<char*>(p), FreeAligned{pooled});
}

// Bytes [pos, pos + len) of the stream write_direct writes (pos relative to its start) into dst.
salt_status produce(const salt_direct_write_args& a, int64_t pos, int64_t len, char* dst) {
  if (a.fd_in >= 0) {
#if defined(__linux__) || defined(__APPLE__)
    int64_t done = 0;
    while (done < len) {
      const ssize_t r = pread(a.fd_in, dst + done, static_cast<size_t>(len - done), a.offset_in + pos + done);
      if (r < 0) {
        if (errno == EINTR) continue;
        return io_status("pread", errno);
      }
      if (r == 0) return short_source(a.offset_in + pos + done, a.length, a.offset_in);
      done += r;
    }
    return ok_status();
#else
    return make_status(SALT_E_INTERNAL, "direct writes are not implemented on this platform");
#endif
  }
  const int64_t es = kind_size(a.kind);
  const float* from = a.f32 + pos / es;
  if (a.kind == SALT_WRITE_F32) {
    std::memcpy(dst, from, static_cast<size_t>(len));
    return ok_status();
  }
  salt_convert_args c{};
  c.kind = a.kind == SALT_WRITE_BF16 ? SALT_HALF_BF16 : SALT_HALF_F16;
  c.n = len / es;
  c.f32 = from;
  c.out_h = reinterpret_cast<uint16_t*>(dst);
  c.threads = a.threads;
  return encode_floats(c);
}

#if defined(__linux__) || defined(__APPLE__)
// All of buf at `at` of fd; the errno of the failure, or 0. A write of nothing is EIO (no endless loop).
int pwrite_all(int fd, const char* buf, int64_t len, int64_t at) {
  int64_t done = 0;
  while (done < len) {
    const ssize_t w = pwrite(fd, buf + done, static_cast<size_t>(len - done), static_cast<off_t>(at + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    done += w;
  }
  return 0;
}

// One direct write of whole blocks; what a short write left (e.g. a disk nearly full) goes through
// the buffered descriptor, whose error (ENOSPC) is then the one reported.
int pwrite_direct(int fd_direct, int fd, const char* buf, int64_t len, int64_t at) {
  ssize_t w;
  do {
    w = pwrite(fd_direct, buf, static_cast<size_t>(len), static_cast<off_t>(at));
  } while (w < 0 && errno == EINTR);
  if (w < 0) return errno;
  if (w == len) return 0;
  return pwrite_all(fd, buf + w, len - w, at + w);
}
#endif

#if defined(__linux__)
constexpr int64_t kMapChunk = int64_t(64) << 20;  // bytes of the source mapped per direct write

// The whole blocks [head, tail) of a file-to-file write_direct, written with O_DIRECT straight from
// a read-only mapping of the source, 64 MiB at a time: the kernel pins the source's page-cache pages
// for the write instead of pread copying them into a buffer first (that copy was about a quarter
// of a 1B transfer's CPU samples under perf). Only where the source offset of `head` is block-aligned and the source
// holds the whole range (a shorter one goes the pread way, which reports it). Returns false (and
// writes nothing) where it does not apply; else sets *st, and *refused when the first direct
// write got EINVAL (the file system refuses direct I/O: the caller writes the range buffered).
bool write_mapped(const salt_direct_write_args& a, int64_t head, int64_t tail, salt_status* st, bool* refused) {
  const int64_t src = a.offset_in + (head - a.offset);
  struct stat sb;
  if (src % kBlock != 0 || fstat(a.fd_in, &sb) != 0 || sb.st_size < a.offset_in + a.length) return false;
  *st = ok_status();
  *refused = false;
  for (int64_t p = head; p < tail;) {
    const int64_t len = tail - p < kMapChunk ? tail - p : kMapChunk;
    void* m =
        mmap(nullptr, static_cast<size_t>(len), PROT_READ, MAP_SHARED, a.fd_in, static_cast<off_t>(src + (p - head)));
    if (m == MAP_FAILED) {
      // No mapping (e.g. a file system without mmap): the rest through a buffer.
      if (p == head) return false;
      *st = io_status("mmap", errno);
      return true;
    }
    const int err = pwrite_direct(a.fd_direct, a.fd, static_cast<const char*>(m), len, p);
    munmap(m, static_cast<size_t>(len));
    if (err == EINVAL && p == head) {
      *refused = true;
      return true;
    }
    if (err) {
      *st = io_status("pwrite (direct)", err);
      return true;
    }
    p += len;
  }
  return true;
}
#endif

}  // namespace

salt_status write_direct(const salt_direct_write_args& a) {
  if (a.out_direct) *a.out_direct = 0;
  if (a.fd < 0) return make_status(SALT_E_ARGUMENT, "the file descriptor must be >= 0");
  if (a.offset < 0) return make_status(SALT_E_ARGUMENT, "the offset must be >= 0");
  int64_t total = 0;
  if (a.fd_in >= 0) {
    if (a.offset_in < 0 || a.length < 0) return make_status(SALT_E_ARGUMENT, "offset and length must be >= 0");
    total = a.length;
  } else {
    if (a.kind != SALT_WRITE_F16 && a.kind != SALT_WRITE_BF16 && a.kind != SALT_WRITE_F32)
      return make_status(SALT_E_ARGUMENT, "kind must be F16 (0), BF16 (1) or F32 (2), got %d", a.kind);
    if (a.n < 0) return make_status(SALT_E_SHAPE, "n must be >= 0, got %lld", static_cast<long long>(a.n));
    if (a.n > 0 && a.f32 == nullptr) return make_status(SALT_E_ARGUMENT, "the floats must not be null");
    if (a.offset % kind_size(a.kind) != 0)
      return make_status(SALT_E_ARGUMENT, "the offset must be a multiple of %lld for this kind",
                         static_cast<long long>(kind_size(a.kind)));
    total = a.n * kind_size(a.kind);
  }
#if defined(__linux__) || defined(__APPLE__)
  return guarded([&]() -> salt_status {
    if (total == 0) return ok_status();
    const int64_t end = a.offset + total;
    // [offset, head) and [tail, end) are partial blocks; [head, tail) whole ones.
    const int64_t up = (a.offset + kBlock - 1) / kBlock * kBlock;
    const int64_t head = up < end ? up : end;
    const int64_t down = end / kBlock * kBlock;
    const int64_t tail = down > head ? down : head;
    const int64_t chunk = tail - head < kChunk ? (tail - head > kBlock ? tail - head : kBlock) : kChunk;
    AlignedBuffer bufs[2] = {aligned_buffer(static_cast<size_t>(chunk)), aligned_buffer(static_cast<size_t>(chunk))};
    if (!bufs[0] || !bufs[1]) return make_status(SALT_E_NO_MEMORY, "could not allocate the write buffers");
    // A partial block, or everything once direct I/O is refused: through the page cache.
    auto buffered = [&](int64_t from, int64_t to) -> salt_status {
      for (int64_t p = from; p < to; p += chunk) {
        const int64_t len = to - p < chunk ? to - p : chunk;
        salt_status st = produce(a, p - a.offset, len, bufs[0].get());
        if (st.code != SALT_OK) return st;
        if (const int err = pwrite_all(a.fd, bufs[0].get(), len, p)) return io_status("pwrite", err);
      }
      if (a.writeback && to > from) {
        salt_writeback_args wb{a.fd, from, to - from};
        return start_writeback(wb);
      }
      return ok_status();
    };
    salt_status st = buffered(a.offset, head);
    if (st.code != SALT_OK) return st;
    bool direct = a.fd_direct >= 0;
    bool mapped = false;  // the whole blocks were written (or refused) from a mapping of the source
#if defined(__linux__)
    if (direct && a.fd_in >= 0 && tail > head) {
      bool refused = false;
      mapped = write_mapped(a, head, tail, &st, &refused);
      if (mapped && st.code != SALT_OK) return st;
      if (refused) direct = false;
    }
#endif
    if (direct && !mapped) {
      // One chunk is produced (read or encoded) while the previous one is written.
      std::future<int> writing;
      int64_t writing_at = -1;
      // EINVAL on the first direct write: the file system refuses direct I/O (all goes buffered).
      auto refused = [&](int err) { return err == EINVAL && writing_at == head; };
      for (int64_t p = head, k = 0; p < tail; ++k) {
        const int64_t len = tail - p < chunk ? tail - p : chunk;
        char* buf = bufs[k & 1].get();
        st = produce(a, p - a.offset, len, buf);
        if (st.code == SALT_OK && writing.valid()) {
          const int err = writing.get();
          if (refused(err)) {
            direct = false;
            break;
          }
          if (err) return io_status("pwrite (direct)", err);
        }
        if (st.code != SALT_OK) {
          if (writing.valid()) writing.wait();
          return st;
        }
        writing = std::async(std::launch::async, [fd_direct = a.fd_direct, fd = a.fd, buf, len, at = p]() {
          return pwrite_direct(fd_direct, fd, buf, len, at);
        });
        writing_at = p;
        p += len;
      }
      if (direct && writing.valid()) {
        const int err = writing.get();
        if (refused(err))
          direct = false;
        else if (err)
          return io_status("pwrite (direct)", err);
      }
    }
    if (direct && a.out_direct && tail > head) *a.out_direct = 1;
    if (!direct) {
      st = buffered(head, tail);
      if (st.code != SALT_OK) return st;
    }
    return buffered(tail, end);
  });
#else
  return make_status(SALT_E_INTERNAL, "direct writes are not implemented on this platform");
#endif
}

}  // namespace cpu
}  // namespace salt
