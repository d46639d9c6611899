/* The compiled-module cache (include/snc/jit.h): key, entry format, validation, atomic store. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dl_iterate_phdr */
#endif
#include "snc/jit.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/BitWriter.h>
#include <zlib.h>

#include "snc/file.h"

#define HEADER 48
#define MAX_BYTES (1u << 30)                     /* no entry is larger (a corrupt length is refused) */
#define LIMIT_BYTES ((long long)512 << 20)       /* the directory is pruned to 3/4 of this when over */
static const char MAGIC[8] = {'S', 'N', 'C', 'J', 'I', 'T', 'C', '\n'};

/* ------------------------------------------------------------------------------------- hashing */

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t fmix(uint64_t x) { /* murmur3's finaliser */
  x ^= x >> 33, x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

typedef struct hasher {
  uint64_t a, b, n;
} hasher;

/* Two 64-bit lanes over 8-byte words (murmur3-x64-128's mixing), the length folded in at the end. */
static void hash_bytes(hasher *h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i += 8) {
    uint64_t w = 0;
    memcpy(&w, p + i, len - i < 8 ? len - i : 8);
    h->a ^= rotl(w * 0x87c37b91114253d5ULL, 31) * 0x4cf5ad432745937fULL;
    h->a = rotl(h->a, 27) + h->b;
    h->a = h->a * 5 + 0x52dce729;
    h->b ^= rotl(w * 0x4cf5ad432745937fULL, 33) * 0x87c37b91114253d5ULL;
    h->b = rotl(h->b, 31) + h->a;
    h->b = h->b * 5 + 0x38495ab5;
  }
  h->n += len;
  h->a ^= len, h->b ^= ~(uint64_t)len; /* chunk boundaries matter: each call is a field */
}

static void hash_final(hasher *h, uint64_t out[2]) {
  uint64_t a = h->a ^ h->n, b = h->b ^ h->n;
  a += b, b += a;
  a = fmix(a), b = fmix(b);
  a += b, b += a;
  out[0] = a, out[1] = b;
}

/* ------------------------------------------------------------------------------- build identity */

typedef struct build_ids {
  char exe[96], llvm[96];
} build_ids;

static void hex(const unsigned char *p, size_t n, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 3 <= cap; i++) k += (size_t)snprintf(out + k, cap - k, "%02x", p[i]);
}

/* The GNU build id of one loaded object, from its PT_NOTE segments. */
static int note_build_id(struct dl_phdr_info *info, char *out, size_t cap) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      const unsigned char *name = p + sizeof *nh, *desc = name + ((nh->n_namesz + 3) & ~3u);
      if (desc + nh->n_descsz > end) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
        hex(desc, nh->n_descsz, out, cap);
        return 1;
      }
      p = desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return 0;
}

static int each_object(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  build_ids *b = ctx;
  const char *name = info->dlpi_name ? info->dlpi_name : "";
  if (!name[0] && !b->exe[0]) note_build_id(info, b->exe, sizeof b->exe); /* the program comes first */
  if (strstr(name, "libLLVM") && !b->llvm[0]) note_build_id(info, b->llvm, sizeof b->llvm);
  return 0;
}

static build_ids g_ids;
static pthread_once_t g_ids_once = PTHREAD_ONCE_INIT;

/* Without a build id (a linker that writes none): the executable's size and modification time. */
static void find_ids(void) {
  dl_iterate_phdr(each_object, &g_ids);
  struct stat st;
  if (!g_ids.exe[0] && stat("/proc/self/exe", &st) == 0)
    snprintf(g_ids.exe, sizeof g_ids.exe, "size %lld mtime %lld.%09ld", (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
  if (!g_ids.llvm[0]) snprintf(g_ids.llvm, sizeof g_ids.llvm, "none");
}

/* ------------------------------------------------------------------------------------------ key */

const char *snc_jit_cache_default_dir(char *buf, size_t n) {
  const char *d = getenv("SNC_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (d) return d[0] && snprintf(buf, n, "%s", d) < (int)n ? buf : NULL;
  if (x && x[0] == '/') return snprintf(buf, n, "%s/snc", x) < (int)n ? buf : NULL;
  if (home && home[0]) return snprintf(buf, n, "%s/.cache/snc", home) < (int)n ? buf : NULL;
  return NULL;
}

int snc_jit_cache_key_of(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, snc_jit_cache_key *k,
                         snc_error *err) {
  pthread_once(&g_ids_once, find_ids);
  memset(k, 0, sizeof *k);
  unsigned major = 0, minor = 0, patch = 0;
  LLVMGetVersion(&major, &minor, &patch);
  char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm),
       *features = LLVMGetTargetMachineFeatureString(tm);
  int len = snprintf(k->text, sizeof k->text, "snc-jit-cache %d; llvm %u.%u.%u; %s; %s; %s; O%d; snc build %s; libLLVM build %s",
                     SNC_JIT_CACHE_FORMAT, major, minor, patch, triple, cpu, features, opt_level, g_ids.exe, g_ids.llvm);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  if (len < 0 || (size_t)len >= sizeof k->text) return snc_errorf(err, "jit cache: key text too long");
  LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(m);
  if (!bc) return snc_errorf(err, "jit cache: cannot write the module's bitcode");
  hasher h = {0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL, 0};
  hash_bytes(&h, k->text, (size_t)len);
  hash_bytes(&h, LLVMGetBufferStart(bc), LLVMGetBufferSize(bc));
  hash_final(&h, k->hash);
  LLVMDisposeMemoryBuffer(bc);
  return 0;
}

void snc_jit_cache_path(const char *dir, const snc_jit_cache_key *k, char *buf, size_t n) {
  snprintf(buf, n, "%s/%016llx%016llx.jit", dir, (unsigned long long)k->hash[0], (unsigned long long)k->hash[1]);
}

/* ------------------------------------------------------------------------------------ the format */

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static uint32_t crc(const unsigned char *p, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) { /* zlib takes uInt lengths */
    uInt part = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, p, part);
    p += part, n -= part;
  }
  return (uint32_t)c;
}

static void put_key_hash(unsigned char *p, const snc_jit_cache_key *k) {
  put64(p, k->hash[0]);
  put64(p + 8, k->hash[1]);
}

int snc_jit_cache_pack(const snc_jit_cache_key *k, LLVMMemoryBufferRef const *objs, int nobj, unsigned char **bytes,
                       size_t *len) {
  SNC_ASSERT(nobj >= 1 && nobj <= SNC_JIT_CACHE_MAX_OBJECTS);
  size_t tlen = strlen(k->text), payload = 4 + tlen;
  for (int i = 0; i < nobj; i++) payload += 8 + LLVMGetBufferSize(objs[i]);
  unsigned char *b = malloc(HEADER + payload);
  if (!b) return -1;
  unsigned char *p = b + HEADER;
  put32(p, (uint32_t)tlen);
  memcpy(p + 4, k->text, tlen);
  p += 4 + tlen;
  for (int i = 0; i < nobj; i++) {
    size_t n = LLVMGetBufferSize(objs[i]);
    put64(p, n);
    memcpy(p + 8, LLVMGetBufferStart(objs[i]), n);
    p += 8 + n;
  }
  memcpy(b, MAGIC, 8);
  put32(b + 8, SNC_JIT_CACHE_FORMAT);
  put32(b + 12, (uint32_t)nobj);
  put_key_hash(b + 16, k);
  put64(b + 32, payload);
  put32(b + 40, crc(b + HEADER, payload));
  put32(b + 44, crc(b, 44));
  *bytes = b;
  *len = HEADER + payload;
  return 0;
}

/* Checks an entry's bytes against k; 0, or -1 with why->msg. On success the objects' offsets. */
static int check_entry(const unsigned char *b, size_t len, const snc_jit_cache_key *k, size_t *off, size_t *size,
                       int *nobj, snc_error *why) {
  unsigned char want[16];
  put_key_hash(want, k);
  if (len < HEADER) return snc_errorf(why, "truncated (%zu bytes, the header alone is %d)", len, HEADER);
  if (memcmp(b, MAGIC, 8)) return snc_errorf(why, "not a cache entry (bad magic)");
  if (get32(b + 44) != crc(b, 44)) return snc_errorf(why, "header checksum mismatch");
  if (get32(b + 8) != SNC_JIT_CACHE_FORMAT)
    return snc_errorf(why, "stale: format version %u, this snc reads %d", get32(b + 8), SNC_JIT_CACHE_FORMAT);
  if (memcmp(b + 16, want, 16)) return snc_errorf(why, "stale: written for another key");
  uint64_t payload = get64(b + 32);
  if (payload != len - HEADER)
    return snc_errorf(why, "truncated or padded: payload of %llu bytes announced, %zu present", (unsigned long long)payload,
                      len - HEADER);
  if (get32(b + 40) != crc(b + HEADER, len - HEADER)) return snc_errorf(why, "payload checksum mismatch");
  *nobj = (int)get32(b + 12);
  if (*nobj < 1 || *nobj > SNC_JIT_CACHE_MAX_OBJECTS) return snc_errorf(why, "%d objects", *nobj);
  const unsigned char *p = b + HEADER, *end = b + len;
  uint32_t tlen = get32(p);
  if (tlen > (size_t)(end - p - 4)) return snc_errorf(why, "key text overruns the entry");
  if (tlen != strlen(k->text) || memcmp(p + 4, k->text, tlen)) return snc_errorf(why, "stale: another key text (hash collision)");
  p += 4 + tlen;
  for (int i = 0; i < *nobj; i++) {
    if (end - p < 8) return snc_errorf(why, "object %d: truncated", i);
    uint64_t n = get64(p);
    if (n > (uint64_t)(end - p - 8) || n < 4 || memcmp(p + 8, "\177ELF", 4))
      return snc_errorf(why, "object %d: not an ELF object of the announced size", i);
    off[i] = (size_t)(p + 8 - b), size[i] = (size_t)n;
    p += 8 + n;
  }
  if (p != end) return snc_errorf(why, "%zu bytes after the last object", (size_t)(end - p));
  return 0;
}

int snc_jit_cache_load(const char *dir, const snc_jit_cache_key *k, LLVMMemoryBufferRef *objs, int *nobj,
                       snc_error *why) {
  char path[4200];
  snc_jit_cache_path(dir, k, path, sizeof path);
  *nobj = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  struct stat st;
  unsigned char *b = NULL;
  int rc = -1;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_BYTES) {
    snc_errorf(why, "%s: not a regular file of a plausible size", path);
    goto done;
  }
  size_t len = (size_t)st.st_size;
  if (!(b = malloc(len ? len : 1)) || fread(b, 1, len, f) != len) {
    snc_errorf(why, "%s: cannot read: %s", path, b ? strerror(errno) : "out of memory");
    goto done;
  }
  size_t off[SNC_JIT_CACHE_MAX_OBJECTS], size[SNC_JIT_CACHE_MAX_OBJECTS];
  int n = 0;
  snc_error e = {{0}};
  if (check_entry(b, len, k, off, size, &n, &e) != 0) {
    snc_errorf(why, "%s: %s", path, e.msg);
    goto done;
  }
  for (int i = 0; i < n; i++)
    objs[i] = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)b + off[i], size[i], "snc-jit-cache");
  *nobj = n;
  rc = 1;
  utimensat(AT_FDCWD, path, NULL, 0); /* used now: the last to be pruned */
done:
  free(b);
  fclose(f);
  return rc;
}

/* ------------------------------------------------------------------------------------- storing */

static int mkdirs(const char *dir) {
  char p[4096];
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return -1;
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
      *s = '/';
    }
  return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

typedef struct entry {
  char name[64];
  long long size;
  time_t mtime;
} entry;

static int by_age(const void *a, const void *b) {
  const entry *x = a, *y = b;
  return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Over LIMIT_BYTES of entries: the oldest go until 3/4 of it is left. Temporaries of writers that
 * died (older than an hour) go too. Best effort: errors are ignored. */
static void prune(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  entry *e = NULL;
  size_t n = 0, cap = 0;
  long long total = 0;
  time_t now = time(NULL);
  char path[4200];
  for (struct dirent *de; (de = readdir(d));) {
    size_t l = strlen(de->d_name);
    int tmp = strstr(de->d_name, ".jit.tmp.") != NULL;
    if (l >= sizeof e->name || (!tmp && (l < 5 || strcmp(de->d_name + l - 4, ".jit")))) continue;
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (tmp) {
      if (now - st.st_mtime > 3600) unlink(path);
      continue;
    }
    if (n == cap) {
      entry *ne = realloc(e, (cap = cap ? 2 * cap : 64) * sizeof *e);
      if (!ne) break;
      e = ne;
    }
    snprintf(e[n].name, sizeof e[n].name, "%s", de->d_name);
    e[n].size = st.st_size, e[n].mtime = st.st_mtime;
    total += st.st_size, n++;
  }
  closedir(d);
  if (total > LIMIT_BYTES) {
    qsort(e, n, sizeof *e, by_age);
    for (size_t i = 0; i < n && total > LIMIT_BYTES / 4 * 3; i++) {
      snprintf(path, sizeof path, "%s/%s", dir, e[i].name);
      if (unlink(path) == 0) total -= e[i].size;
    }
  }
  free(e);
}

int snc_jit_cache_store(const char *dir, const snc_jit_cache_key *k, const unsigned char *bytes, size_t len,
                        snc_error *err) {
  if (mkdirs(dir) != 0) return snc_errorf(err, "%s: cannot create the cache directory: %s", dir, strerror(errno));
  char path[4200];
  snc_jit_cache_path(dir, k, path, sizeof path);
  if (snc_file_write_atomic(path, bytes, len, err) != 0) return -1;
  prune(dir);
  return 0;
}

const char *snc_jit_cache_status_name(int status) {
  switch (status) {
  case SNC_JIT_CACHE_HIT: return "cached";
  case SNC_JIT_CACHE_STORED: return "compiled, stored in the cache";
  case SNC_JIT_CACHE_REBUILT: return "compiled, a corrupt or stale cache entry replaced";
  case SNC_JIT_CACHE_UNWRITABLE: return "compiled, the cache is not writable";
  default: return "no cache";
  }
}
