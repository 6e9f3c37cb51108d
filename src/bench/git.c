#include "bench/git.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/error.h"
#include "util/fileio.h"

#define PATHMAX 4096

/* snprintf through a va_list: paths are bounded by the buffers, truncation is accepted. */
static void fmt(char *out, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t cap, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(out, cap, f, ap);
    va_end(ap);
}

typedef struct repo {
    char git_dir[PATHMAX];    /* per-worktree dir (HEAD lives here) */
    char common_dir[PATHMAX]; /* refs, packed-refs, objects */
} repo;

/* First line of a small file into buf (trailing whitespace stripped); 0 on success. */
static int read_line(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(buf, (int)cap, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    size_t n = strlen(buf);
    while (n && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    return 0;
}

static void join(char *out, const char *base, const char *rel) {
    if (rel[0] == '/')
        fmt(out, PATHMAX, "%s", rel);
    else
        fmt(out, PATHMAX, "%s/%s", base, rel);
}

static bool is_hex40(const char *s) {
    for (int i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return s[40] == '\0' || isspace((unsigned char)s[40]);
}

/* Finds the git dir for dir or one of its parents. */
static bool find_repo(const char *dir, repo *r) {
    char cur[PATHMAX];
    if (!realpath(dir, cur)) return false;
    for (;;) {
        char dotgit[PATHMAX + 8];
        fmt(dotgit, sizeof dotgit, "%s/.git", cur);
        struct stat st;
        if (stat(dotgit, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                fmt(r->git_dir, PATHMAX, "%s", dotgit);
                break;
            }
            char line[PATHMAX];
            if (S_ISREG(st.st_mode) && read_line(dotgit, line, sizeof line) == 0 &&
                !strncmp(line, "gitdir:", 7)) {
                const char *p = line + 7;
                while (*p == ' ')
                    p++;
                join(r->git_dir, cur, p);
                break;
            }
        }
        char *slash = strrchr(cur, '/');
        if (!slash || slash == cur) return false;
        *slash = '\0';
    }
    char cd[PATHMAX], path[PATHMAX + 16];
    fmt(path, sizeof path, "%s/commondir", r->git_dir);
    if (read_line(path, cd, sizeof cd) == 0)
        join(r->common_dir, r->git_dir, cd);
    else
        fmt(r->common_dir, PATHMAX, "%s", r->git_dir);
    return true;
}

static int packed_ref(const repo *r, const char *name, char sha[41]) {
    char path[PATHMAX + 16];
    fmt(path, sizeof path, "%s/packed-refs", r->common_dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[PATHMAX];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '^') continue;
        size_t n = strlen(line);
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        if (n > 41 && is_hex40(line) && line[40] == ' ' && !strcmp(line + 41, name)) {
            memcpy(sha, line, 40);
            sha[40] = '\0';
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* Resolves a ref name ("HEAD", "refs/heads/main") to a commit id. On the way, the first
 * symbolic target under refs/heads/ becomes the branch. */
static int resolve_ref(const repo *r, const char *name, char sha[41], char *branch, size_t bcap,
                       int depth) {
    if (depth > 8) return -1;
    char line[PATHMAX], path[2 * PATHMAX];
    int got = -1;
    /* Per-worktree refs (HEAD) live in git_dir, shared ones in common_dir. */
    fmt(path, sizeof path, "%s/%s", r->git_dir, name);
    got = read_line(path, line, sizeof line);
    if (got != 0 && strcmp(r->git_dir, r->common_dir) != 0) {
        fmt(path, sizeof path, "%s/%s", r->common_dir, name);
        got = read_line(path, line, sizeof line);
    }
    if (got == 0) {
        if (!strncmp(line, "ref:", 4)) {
            const char *t = line + 4;
            while (*t == ' ')
                t++;
            if (branch && !branch[0] && !strncmp(t, "refs/heads/", 11))
                fmt(branch, bcap, "%s", t + 11);
            return resolve_ref(r, t, sha, branch, bcap, depth + 1);
        }
        if (is_hex40(line)) {
            memcpy(sha, line, 40);
            sha[40] = '\0';
            return 0;
        }
        return -1;
    }
    return packed_ref(r, name, sha);
}

/* ---- objects ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void sha_bin(const char *hex, unsigned char out[20]) {
    for (int i = 0; i < 20; i++)
        out[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
}

/* Inflates a zlib stream from memory; output malloc'd. limit caps the output. */
static unsigned char *inflate_mem(const unsigned char *in, size_t n, size_t limit,
                                  size_t *out_len) {
    size_t cap = 4096;
    unsigned char *out = malloc(cap);
    if (!out) return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    int zr = Z_STREAM_ERROR;
    do {
        if (z.total_out == cap) {
            if (cap >= limit) break;
            size_t nc = cap * 2;
            unsigned char *no = realloc(out, nc);
            if (!no) break;
            out = no;
            cap = nc;
        }
        z.next_out = out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        zr = inflate(&z, Z_NO_FLUSH);
    } while (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_out == 0));
    *out_len = z.total_out;
    bool ok = zr == Z_STREAM_END;
    inflateEnd(&z);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* Inflates the zlib stream starting at off in an open pack (exactly `size` bytes out). */
static unsigned char *inflate_fd(int fd, off_t off, size_t size) {
    unsigned char *out = malloc(size + 1);
    unsigned char in[65536];
    if (!out) return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
        free(out);
        return NULL;
    }
    z.next_out = out;
    z.avail_out = (uInt)size + 1;
    int zr = Z_OK;
    while (zr == Z_OK) {
        ssize_t got = pread(fd, in, sizeof in, off);
        if (got <= 0) break;
        off += got;
        z.next_in = in;
        z.avail_in = (uInt)got;
        while (z.avail_in > 0 && zr == Z_OK)
            zr = inflate(&z, Z_NO_FLUSH);
    }
    bool ok = zr == Z_STREAM_END && z.total_out == size;
    inflateEnd(&z);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

typedef struct pack {
    int idx_fd, pack_fd;
    uint32_t n;
    unsigned char *idx; /* whole .idx file */
    size_t idx_len;
} pack;

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Offset of sha in the pack, or -1. */
static int64_t pack_find(const pack *p, const unsigned char sha[20]) {
    const unsigned char *fan = p->idx + 8, *shas = fan + 1024;
    uint32_t lo = sha[0] ? be32(fan + 4 * (sha[0] - 1)) : 0, hi = be32(fan + 4 * sha[0]);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = memcmp(shas + 20 * (size_t)mid, sha, 20);
        if (c == 0) {
            const unsigned char *offs = shas + 24 * (size_t)p->n; /* after shas and crcs */
            uint32_t o = be32(offs + 4 * (size_t)mid);
            if (!(o & 0x80000000u)) return o;
            const unsigned char *large = offs + 4 * (size_t)p->n + 8 * (size_t)(o & 0x7fffffffu);
            if (large + 8 > p->idx + p->idx_len) return -1;
            return (int64_t)((uint64_t)be32(large) << 32 | be32(large + 4));
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static unsigned char *pack_read(const pack *p, int64_t off, int *type, size_t *len, int depth);

static size_t delta_varint(const unsigned char **pp, const unsigned char *end) {
    size_t v = 0;
    int shift = 0;
    while (*pp < end) {
        unsigned char c = *(*pp)++;
        v |= (size_t)(c & 0x7f) << shift;
        shift += 7;
        if (!(c & 0x80) || shift > 56) break;
    }
    return v;
}

static unsigned char *apply_delta(const unsigned char *base, size_t blen, const unsigned char *d,
                                  size_t dlen, size_t *out_len) {
    const unsigned char *p = d, *end = d + dlen;
    size_t src = delta_varint(&p, end), dst = delta_varint(&p, end);
    if (src != blen || dst > (1u << 30)) return NULL;
    unsigned char *out = malloc(dst + 1), *o = out;
    if (!out) return NULL;
    while (p < end) {
        unsigned char c = *p++;
        if (c & 0x80) {
            size_t off = 0, sz = 0;
            for (int i = 0; i < 4; i++)
                if (c & (1 << i)) off |= (size_t)(p < end ? *p++ : 0) << (8 * i);
            for (int i = 0; i < 3; i++)
                if (c & (0x10 << i)) sz |= (size_t)(p < end ? *p++ : 0) << (8 * i);
            if (sz == 0) sz = 0x10000;
            if (off + sz > blen || (size_t)(o - out) + sz > dst) goto bad;
            memcpy(o, base + off, sz);
            o += sz;
        } else if (c) {
            if ((size_t)(end - p) < c || (size_t)(o - out) + c > dst) goto bad;
            memcpy(o, p, c);
            o += c;
            p += c;
        } else {
            goto bad;
        }
    }
    if ((size_t)(o - out) != dst) goto bad;
    *out_len = dst;
    return out;
bad:
    free(out);
    return NULL;
}

static unsigned char *pack_read(const pack *p, int64_t off, int *type, size_t *len, int depth) {
    if (depth > 50) return NULL;
    unsigned char hdr[32];
    ssize_t got = pread(p->pack_fd, hdr, sizeof hdr, off);
    if (got < 2) return NULL;
    int i = 0;
    unsigned char c = hdr[i++];
    int t = (c >> 4) & 7;
    size_t size = c & 15;
    int shift = 4;
    while ((c & 0x80) && i < got) {
        c = hdr[i++];
        size |= (size_t)(c & 0x7f) << shift;
        shift += 7;
    }
    if (size > (1u << 30)) return NULL;
    if (t >= 1 && t <= 4) {
        *type = t;
        *len = size;
        return inflate_fd(p->pack_fd, off + i, size);
    }
    int64_t base_off;
    if (t == 6) { /* OFS_DELTA: base at a negative offset */
        c = hdr[i++];
        uint64_t bo = c & 127;
        while ((c & 0x80) && i < got) {
            c = hdr[i++];
            bo = ((bo + 1) << 7) | (c & 127);
        }
        base_off = off - (int64_t)bo;
    } else if (t == 7) { /* REF_DELTA: base named by id */
        if (i + 20 > got) return NULL;
        base_off = pack_find(p, hdr + i);
        i += 20;
    } else {
        return NULL;
    }
    if (base_off < 0) return NULL;
    unsigned char *delta = inflate_fd(p->pack_fd, off + i, size);
    if (!delta) return NULL;
    size_t blen;
    unsigned char *base = pack_read(p, base_off, type, &blen, depth + 1);
    unsigned char *out = base ? apply_delta(base, blen, delta, size, len) : NULL;
    free(base);
    free(delta);
    return out;
}

/* Reads object sha (hex) from the repository; returns the body and sets blen to the content after
 * the header. */
static unsigned char *read_object(const repo *r, const char *hex, int *type, size_t *blen) {
    char path[PATHMAX + 64];
    fmt(path, sizeof path, "%s/objects/%.2s/%s", r->common_dir, hex, hex + 2);
    char *raw;
    size_t rawlen;
    gb_error e;
    if (gb_file_read_all(path, 64u << 20, &raw, &rawlen, &e) == 0) {
        size_t n;
        unsigned char *obj = inflate_mem((unsigned char *)raw, rawlen, 64u << 20, &n);
        free(raw);
        if (!obj) return NULL;
        unsigned char *nul = memchr(obj, 0, n);
        if (!nul) {
            free(obj);
            return NULL;
        }
        *type = !strncmp((char *)obj, "commit ", 7) ? 1 : 0;
        size_t hl = (size_t)(nul - obj) + 1;
        memmove(obj, obj + hl, n - hl);
        *blen = n - hl;
        return obj;
    }
    unsigned char sha[20];
    sha_bin(hex, sha);
    fmt(path, sizeof path, "%s/objects/pack", r->common_dir);
    DIR *d = opendir(path);
    if (!d) return NULL;
    struct dirent *de;
    unsigned char *result = NULL;
    while (!result && (de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".idx") != 0) continue;
        char ip[2 * PATHMAX], pp[2 * PATHMAX];
        fmt(ip, sizeof ip, "%s/%s", path, de->d_name);
        fmt(pp, sizeof pp, "%s/%.*s.pack", path, (int)(nl - 4), de->d_name);
        pack pk = {0};
        char *idx;
        if (gb_file_read_all(ip, 0, &idx, &pk.idx_len, &e) != 0) continue;
        pk.idx = (unsigned char *)idx;
        if (pk.idx_len >= 8 + 1024 && !memcmp(pk.idx, "\377tOc", 4) && be32(pk.idx + 4) == 2) {
            pk.n = be32(pk.idx + 8 + 1020);
            if (8 + 1024 + (size_t)pk.n * 28 <= pk.idx_len) {
                int64_t off = pack_find(&pk, sha);
                if (off >= 0 && (pk.pack_fd = open(pp, O_RDONLY)) >= 0) {
                    result = pack_read(&pk, off, type, blen, 0);
                    close(pk.pack_fd);
                }
            }
        }
        free(idx);
    }
    closedir(d);
    return result;
}

/* Subject as `git log --format=%s`: the first paragraph, lines joined by single spaces. */
static void commit_subject(const unsigned char *body, size_t n, char *out, size_t cap) {
    out[0] = '\0';
    const char *s = (const char *)body, *end = s + n;
    const char *msg = NULL;
    for (const char *p = s; p + 1 < end; p++)
        if (p[0] == '\n' && p[1] == '\n') {
            msg = p + 2;
            break;
        }
    if (!msg) return;
    while (msg < end && *msg == '\n')
        msg++;
    size_t o = 0;
    const char *p = msg;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        while (le > p && isspace((unsigned char)le[-1]))
            le--;
        if (le == p) break; /* blank line ends the paragraph */
        if (o && o + 1 < cap) out[o++] = ' ';
        for (const char *q = p; q < le && o + 1 < cap; q++)
            out[o++] = *q;
        if (!nl) break;
        p = nl + 1;
    }
    out[o] = '\0';
}

int gb_git_read(const char *dir, gb_git_info *out, gb_error *err) {
    (void)err;
    memset(out, 0, sizeof *out);
    repo r;
    if (!find_repo(dir, &r)) {
        fmt(out->note, sizeof out->note, "%s is not inside a git repository", dir);
        return GB_OK;
    }
    out->found = true;
    fmt(out->git_dir, sizeof out->git_dir, "%s", r.git_dir);
    char head[PATHMAX], path[PATHMAX + 16];
    fmt(path, sizeof path, "%s/HEAD", r.git_dir);
    if (read_line(path, head, sizeof head) != 0) {
        fmt(out->note, sizeof out->note, "%s: cannot read HEAD", r.git_dir);
        return GB_OK;
    }
    if (resolve_ref(&r, "HEAD", out->commit, out->branch, sizeof out->branch, 0) != 0) {
        out->commit[0] = '\0';
        fmt(out->note, sizeof out->note, "%s: HEAD does not name a commit yet", r.git_dir);
        return GB_OK;
    }
    int type = 0;
    size_t blen = 0;
    unsigned char *body = read_object(&r, out->commit, &type, &blen);
    if (!body || type != 1) {
        fmt(out->note, sizeof out->note, "%s: commit object %s not readable", r.git_dir,
            out->commit);
    } else {
        commit_subject(body, blen, out->subject, sizeof out->subject);
    }
    free(body);
    return GB_OK;
}
