/* Git metadata of a working directory, read from the repository files without running
 * git: commit id of HEAD, branch name and commit subject. Handles plain (loose) refs,
 * packed refs (packed-refs), detached HEAD, symbolic refs and linked worktrees (a .git
 * file with "gitdir: ...", whose commondir file points at the main repository). The subject
 * is read from the commit object: a loose object (zlib-compressed) or an entry of a pack
 * (.idx v2 + .pack, including delta-compressed entries). */
#ifndef GB_BENCH_GIT_H
#define GB_BENCH_GIT_H

#include <stdbool.h>
#include "genbench.h"

typedef struct gb_git_info {
    bool found;         /* a repository encloses the directory */
    char commit[41];    /* "" when HEAD has no commit yet */
    char branch[256];   /* "" when HEAD is detached */
    char subject[1024]; /* first paragraph of the commit message, lines joined by spaces;
                           "" when the object could not be read */
    char git_dir[4096]; /* the worktree's git dir */
    char note[512];     /* why something is missing (for the log) */
} gb_git_info;

/* Reads the repository enclosing dir (walking up to the root). Returns GB_OK with
 * found = false outside a repository; an error only for unreadable/corrupt repository
 * files. */
int gb_git_read(const char *dir, gb_git_info *out, gb_error *err);

#endif
